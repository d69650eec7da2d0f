import NIOCore
import NIOHTTP2

/// Closes an HTTP/2 connection that has had no open stream for `timeout`.
///
/// The HTTP/2 counterpart of ``RequestHeadTimeoutHandler``'s idle bound: a connection that
/// only sends the preface, SETTINGS or PINGs, or that keeps quiet after its last stream ended,
/// is closed once `timeout` has passed with no stream open and without the client consuming
/// data (its connection-level WINDOW_UPDATEs restart the clock: the response of a stream that
/// has ended may still be in buffers on its way). Then a GOAWAY goes out after everything
/// already queued, the output is closed behind it, and the client gets `drainTimeout` to read
/// the rest and close. Streams themselves are bounded by a
/// ``RequestHeadTimeoutHandler`` in each stream's pipeline (stalled request bodies).
///
/// Sits after `NIOHTTP2Handler`. Its inline multiplexer reports streams to a
/// `NIOHTTP2StreamDelegate` (``streamDelegate``), not down the pipeline; those reports drive a
/// small state machine: `idle` (timer armed) ⇄ `active(openStreams)`, then `closing` and `closed`.
///
/// A graceful shutdown (``beginShutdown()``) says GOAWAY at once, naming the last stream the
/// client opened: an idle connection then closes as after its timeout, an active one goes to
/// `draining(openStreams)`, where its streams in flight finish, and closes once the last has.
final class HTTP2IdleConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame

    private enum State {
        case idle(Scheduled<Void>?)
        case active(openStreams: Int)
        /// GOAWAY sent for a shutdown; the streams in flight finish, then the connection closes.
        case draining(openStreams: Int)
        case closing
        case closed
    }

    private let timeout: TimeAmount
    private let drainTimeout: TimeAmount
    private let eventLoop: any EventLoop
    private var state = State.idle(nil)
    private var context: ChannelHandlerContext?
    /// The highest stream the client opened, for GOAWAY.
    private var lastStreamID = HTTP2StreamID(0)

    /// - Parameters:
    ///   - timeout: how long the connection may stay without a stream.
    ///   - drainTimeout: how long a client may take to read what is left and close after GOAWAY.
    ///   - eventLoop: the connection's event loop, where the stream reports arrive.
    init(timeout: TimeAmount, drainTimeout: TimeAmount, eventLoop: any EventLoop) {
        self.timeout = timeout
        self.drainTimeout = drainTimeout
        self.eventLoop = eventLoop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { becomeIdle(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        becomeIdle(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A connection-level WINDOW_UPDATE means the client is still consuming what was sent:
        // responses of streams that have already ended can be megabytes from being read.
        if case .windowUpdate = unwrapInboundIn(data).payload, case .idle = state {
            becomeIdle(context: context)
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if case .idle(let timer) = state { timer?.cancel() }
        state = .closed
        self.context = nil
    }

    /// The delegate to hand `configureAsyncHTTP2Pipeline`; it calls back on the connection's event loop.
    var streamDelegate: some NIOHTTP2StreamDelegate {
        StreamCounter(handler: NIOLoopBound(self, eventLoop: eventLoop))
    }

    private func streamOpened(_ id: HTTP2StreamID) {
        lastStreamID = max(lastStreamID, id)
        switch state {
        case .idle(let timer):
            timer?.cancel()
            state = .active(openStreams: 1)
        case .active(let open):
            state = .active(openStreams: open + 1)
        case .draining(let open):
            state = .draining(openStreams: open + 1)
        case .closing, .closed:
            break
        }
    }

    private func streamClosed() {
        switch state {
        case .active(let open):
            if open <= 1 {
                if let context { becomeIdle(context: context) }
            } else {
                state = .active(openStreams: open - 1)
            }
        case .draining(let open):
            if open <= 1 {
                state = .closing
                // Reported from inside the HTTP/2 handler's own write or read: close afterwards.
                guard let context else { return }
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.execute {
                    let (handler, context) = loopBound.value
                    handler.sayGoAwayAndCloseOutput(context: context)
                }
            } else {
                state = .draining(openStreams: open - 1)
            }
        case .idle, .closing, .closed:
            break
        }
    }

    /// Begins a graceful close for a shutdown: GOAWAY now, so that the client opens no more
    /// streams here; an idle connection then closes, an active one once its streams have ended.
    /// Call on the connection's event loop.
    func beginShutdown() {
        guard let context else { return }
        switch state {
        case .idle(let timer):
            timer?.cancel()
            state = .closing
            sayGoAwayAndCloseOutput(context: context)
        case .active(let open):
            state = .draining(openStreams: open)
            context.writeAndFlush(NIOAny(goAwayFrame), promise: nil)
        case .draining, .closing, .closed:
            break
        }
    }

    /// Reports the multiplexer's streams to the handler.
    private struct StreamCounter: NIOHTTP2StreamDelegate {
        let handler: NIOLoopBound<HTTP2IdleConnectionHandler>

        func streamCreated(_ id: HTTP2StreamID, channel: any Channel) { handler.value.streamOpened(id) }
        func streamClosed(_ id: HTTP2StreamID, channel: any Channel) { handler.value.streamClosed() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .idle(let timer) = state { timer?.cancel() }
        state = .closed
        context.fireChannelInactive()
    }

    private func becomeIdle(context: ChannelHandlerContext) {
        switch state {
        case .idle(let timer): timer?.cancel()
        case .active: break
        case .draining, .closing, .closed: return
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        state = .idle(context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = loopBound.value
            handler.goAway(context: context)
        })
    }

    /// GOAWAY without error, naming the highest stream the client opened.
    private var goAwayFrame: HTTP2Frame {
        HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil))
    }

    /// Closes a connection that has had no stream for `timeout`.
    private func goAway(context: ChannelHandlerContext) {
        guard case .idle = state else { return }
        state = .closing
        sayGoAwayAndCloseOutput(context: context)
    }

    /// Says GOAWAY (again, after a shutdown's first one: the last stream id stays the same), then
    /// closes only the output (TLS close_notify and FIN after everything queued) and lets the
    /// client close: the responses of streams that already ended may still be on their way, and
    /// closing a socket with unread input resets it, dropping them. A client that does not close
    /// within `drainTimeout` is closed for good.
    private func sayGoAwayAndCloseOutput(context: ChannelHandlerContext) {
        let written = context.eventLoop.makePromise(of: Void.self)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        written.futureResult.whenComplete { _ in
            let context = loopBound.value
            let outputClosed = context.eventLoop.makePromise(of: Void.self)
            outputClosed.futureResult.whenFailure { _ in loopBound.value.close(promise: nil) }
            context.close(mode: .output, promise: outputClosed)
        }
        let forced = context.eventLoop.scheduleTask(in: drainTimeout) { loopBound.value.close(promise: nil) }
        context.channel.closeFuture.whenComplete { _ in forced.cancel() }
        context.writeAndFlush(NIOAny(goAwayFrame), promise: written)
    }
}
