import NIOCore
import NIOHTTP1

/// Closes an HTTP/1.1 connection that does not deliver a complete request head in time:
/// counted from the moment the connection opens or the previous response ends, so it bounds
/// both idle keep-alive connections and clients that trickle their headers (slowloris).
///
/// The same bound applies to a request body that stalls: while Portcullis asks for body bytes
/// (a `read` went out and nothing arrived since), the client has that long to send some. Time
/// in which Portcullis itself reads nothing (backpressure from a slow registry) does not count.
///
/// A response the client stops reading has its own bound, `stallTimeout`
/// (`timeouts.response_stall`): while the channel stays unwritable (Portcullis has more to send
/// than the client takes), the client has that long to take some. Over HTTP/2 that is a
/// flow-control window update, which a rate-limited client may send only every few seconds.
///
/// A small state machine: `waitingForHead` (timer armed) → `readingBody` on a request head
/// (timer armed only while a read is outstanding) → `serving` (timer off) on the request's end
/// → `waitingForHead` again once the response's end has been written out; `closed` at the end.
/// The write-stall timer runs beside it, armed while the channel is unwritable.
///
/// On an HTTP/2 stream (`isStream`) the head arrives with the stream itself (its HEADERS frame
/// opens it, and the connection handler assembles the whole header block first) and no second
/// request follows, so no head timer is armed, neither at the start nor after the response: only
/// the body and write-stall bounds apply. The connection's idle bound is HTTP2IdleConnectionHandler's.
final class RequestHeadTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case waitingForHead(Scheduled<Void>?)
        case readingBody(Scheduled<Void>?)
        case serving
        case closed
    }

    private let timeout: TimeAmount
    private var state = State.waitingForHead(nil)
    /// Armed while the channel is not writable: the client has stopped reading.
    private var stallTimer: Scheduled<Void>?

    private let stallTimeout: TimeAmount
    /// An HTTP/2 stream: one request, whose head opened the stream.
    private let isStream: Bool

    /// - Parameters:
    ///   - timeout: for a request head, and for more of a request body Portcullis asks for.
    ///   - stallTimeout: for a client to take more of a response (while the channel is unwritable).
    ///   - isStream: an HTTP/2 stream (no head timer).
    init(timeout: TimeAmount, stallTimeout: TimeAmount, isStream: Bool = false) {
        self.timeout = timeout
        self.stallTimeout = stallTimeout
        self.isStream = isStream
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive && !isStream { arm(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if !isStream { arm(context: context) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head, .waitingForHead(let timer)):
            timer?.cancel()
            state = .readingBody(nil)
        case (.body, .readingBody(let timer)):
            timer?.cancel()
            state = .readingBody(nil)
        case (.end, .readingBody(let timer)):
            timer?.cancel()
            state = .serving
        default:
            break
        }
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        // Portcullis wants more of the body: the client has `timeout` to send some.
        if case .readingBody(nil) = state {
            state = .readingBody(schedule(context: context))
        }
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        // A stream's request has ended: nothing is awaited after its response.
        if isStream, case .serving = state {
            context.write(data, promise: promise)
            return
        }
        // The next head is awaited from when the response has left Portcullis, not from when it
        // was queued: a slow reader still draining a large response is not cut short.
        let written = promise ?? context.eventLoop.makePromise(of: Void.self)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        written.futureResult.whenSuccess {
            let (handler, context) = loopBound.value
            handler.responseWritten(context: context)
        }
        context.write(data, promise: written)
    }

    private func responseWritten(context: ChannelHandlerContext) {
        switch state {
        case .serving:
            if !isStream { arm(context: context) }
        case .readingBody(let timer):
            // Answered before the body ended (a refusal): what is left of the body, and the
            // next head, must come within the head timeout.
            timer?.cancel()
            arm(context: context)
        case .waitingForHead, .closed:
            break
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // A client that reads nothing of a response for the timeout holds a connection (and an
        // upstream one) for nothing: bound it like a stalled request body.
        stallTimer?.cancel()
        stallTimer = context.channel.isWritable ? nil : schedule(context: context, in: stallTimeout)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch state {
        case .waitingForHead(let timer), .readingBody(let timer): timer?.cancel()
        case .serving, .closed: break
        }
        stallTimer?.cancel()
        stallTimer = nil
        state = .closed
        context.fireChannelInactive()
    }

    private func arm(context: ChannelHandlerContext) {
        switch state {
        case .waitingForHead(let timer), .readingBody(let timer): timer?.cancel()
        case .serving: break
        case .closed: return
        }
        state = .waitingForHead(schedule(context: context))
    }

    private func schedule(context: ChannelHandlerContext, in delay: TimeAmount? = nil) -> Scheduled<Void> {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        return context.eventLoop.scheduleTask(in: delay ?? timeout) {
            loopBound.value.close(promise: nil)
        }
    }
}
