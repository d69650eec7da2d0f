import NIOCore
import NIOHTTP1

/// What an upstream connection reports to the exchange that is using it, on its event loop.
protocol UpstreamConnectionDelegate: AnyObject {
    /// A response part arrived from the registry.
    func upstreamReceived(_ part: HTTPClientResponsePart)
    /// A batch of reads from the registry ended: time to flush what was relayed.
    func upstreamReadComplete()
    /// The upstream channel's writability changed (for request bodies relayed from the client).
    func upstreamWritabilityChanged(isWritable: Bool)
    /// The connection failed or closed; no more parts will come.
    func upstreamFailed(_ error: any Error)
}

/// The last handler of one keep-alive HTTP/1.1 connection to the registry.
///
/// It passes response parts to its current delegate (the exchange using the connection) and
/// lets reads through only while that exchange wants them: when the client it relays to
/// cannot take more, reads stop, so backpressure reaches the registry (swift-nio-examples'
/// `GlueHandler`, with HTTP parts). It also bounds how long the registry may stay silent while
/// Portcullis waits for it (`timeouts.upstream_response`).
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// The exchange using this connection, or `nil` while it is idle in the pool.
    weak var delegate: (any UpstreamConnectionDelegate)?

    private var context: ChannelHandlerContext?
    /// A `read` held back because the client side could not take more.
    private var pendingRead = false
    /// Whether reads are let through.
    private var readsEnabled = true
    /// The silence bound while waiting for the registry.
    private var silenceTimer: Scheduled<Void>?
    /// How long the registry may send nothing while it owes a response (set per exchange).
    var silenceTimeout: TimeAmount
    /// Whether the registry owes data (a request is out and its response has not ended).
    private var awaitingResponse = false

    /// Whether the connection is open.
    private(set) var isActive = false

    /// - Parameter silenceTimeout: how long the registry may send nothing while a response is owed.
    init(silenceTimeout: TimeAmount) {
        self.silenceTimeout = silenceTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        isActive = context.channel.isActive
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        isActive = true
        context.fireChannelActive()
    }

    /// Whether the connection can take more request bytes now.
    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// The channel, for closing and identification.
    var channel: (any Channel)? { context?.channel }

    /// Sends a request part (flushed by ``flush()``).
    func write(_ part: HTTPClientRequestPart, promise: EventLoopPromise<Void>? = nil) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        if case .head = part {
            awaitingResponse = true
            armSilenceTimer()
        }
        context.write(wrapOutboundOut(part), promise: promise)
    }

    /// Flushes written request parts.
    func flush() {
        context?.flush()
    }

    /// Stops reading from the registry (the client is not taking more).
    func pauseReads() {
        readsEnabled = false
        silenceTimer?.cancel()
        silenceTimer = nil
    }

    /// Reads from the registry again, issuing a read held back meanwhile.
    func resumeReads() {
        guard !readsEnabled else { return }
        readsEnabled = true
        armSilenceTimer()
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    /// Closes the connection (it is never reused).
    func close() {
        delegate = nil
        silenceTimer?.cancel()
        silenceTimer = nil
        context?.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if readsEnabled {
            context.read()
        } else {
            pendingRead = true
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if case .end = part {
            awaitingResponse = false
            silenceTimer?.cancel()
            silenceTimer = nil
        } else {
            // Cheaper than rescheduling per chunk: the timer looks at this when it fires.
            lastActivity = .now()
        }
        guard let delegate else {
            // A registry talking out of turn: this connection cannot be trusted with a request.
            context.close(promise: nil)
            return
        }
        delegate.upstreamReceived(part)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    private func fail(_ error: any Error) {
        silenceTimer?.cancel()
        silenceTimer = nil
        awaitingResponse = false
        if let delegate {
            self.delegate = nil
            delegate.upstreamFailed(error)
        }
    }

    /// When the registry last sent something.
    private var lastActivity = NIODeadline.now()

    private func armSilenceTimer() {
        silenceTimer?.cancel()
        silenceTimer = nil
        lastActivity = .now()
        schedule(at: lastActivity + silenceTimeout)
    }

    private func schedule(at deadline: NIODeadline) {
        guard awaitingResponse, readsEnabled, let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        silenceTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            let handler = loopBound.value
            handler.silenceTimer = nil
            let due = handler.lastActivity + handler.silenceTimeout
            if due > .now() {
                handler.schedule(at: due)
                return
            }
            handler.fail(UpstreamSilence())
            handler.context?.close(promise: nil)
        }
    }
}

/// The registry sent nothing for `timeouts.upstream_response` while a response was owed.
struct UpstreamSilence: Error, CustomStringConvertible {
    var description: String { "the registry sent nothing within timeouts.upstream_response" }
}
