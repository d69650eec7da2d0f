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
/// A small state machine: `waitingForHead` (timer armed) → `readingBody` on a request head
/// (timer armed only while a read is outstanding) → `serving` (timer off) on the request's end
/// → `waitingForHead` again when the response's end has been written.
final class RequestHeadTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case waitingForHead(Scheduled<Void>?)
        case readingBody(Scheduled<Void>?)
        case serving
    }

    private let timeout: TimeAmount
    private var state = State.waitingForHead(nil)

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context: context)
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
        if case .end = unwrapOutboundIn(data) {
            switch state {
            case .serving:
                arm(context: context)
            case .readingBody(let timer):
                // Answered before the body ended (a refusal): what is left of the body, and the
                // next head, must come within the head timeout.
                timer?.cancel()
                arm(context: context)
            case .waitingForHead:
                break
            }
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch state {
        case .waitingForHead(let timer), .readingBody(let timer): timer?.cancel()
        case .serving: break
        }
        state = .serving
        context.fireChannelInactive()
    }

    private func arm(context: ChannelHandlerContext) {
        switch state {
        case .waitingForHead(let timer), .readingBody(let timer): timer?.cancel()
        case .serving: break
        }
        state = .waitingForHead(schedule(context: context))
    }

    private func schedule(context: ChannelHandlerContext) -> Scheduled<Void> {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        return context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.close(promise: nil)
        }
    }
}
