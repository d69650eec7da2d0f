import NIOCore

/// Tells HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3) from HTTP/1.1 on a plain listener by
/// the first bytes a client sends, then hands the connection to the matching pipeline.
///
/// A small state machine: `detecting` (bytes are held until they either match the 24-byte
/// HTTP/2 connection preface or differ from it) → `decided`, where the chosen pipeline has been
/// added behind this handler, which removes itself and passes on every byte it held. A client
/// that sends nothing is bounded by the caller's negotiation deadline.
final class HTTP2PriorKnowledgeDetector<Negotiated: Sendable>: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The connection preface every HTTP/2 client sends first.
    static var preface: [UInt8] { Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) }

    private enum State {
        case detecting(ByteBuffer?)
        case decided
    }

    private var state = State.detecting(nil)
    private let http1: (any Channel) -> EventLoopFuture<Negotiated>
    private let http2: (any Channel) -> EventLoopFuture<Negotiated>
    private let promise: EventLoopPromise<Negotiated>

    /// The pipeline the client chose, once its first bytes have told.
    var result: EventLoopFuture<Negotiated> { promise.futureResult }

    /// - Parameters:
    ///   - eventLoop: the connection's event loop.
    ///   - http1: adds the HTTP/1.1 pipeline after this handler.
    ///   - http2: adds the HTTP/2 pipeline after this handler.
    init(
        eventLoop: any EventLoop, http1: @escaping (any Channel) -> EventLoopFuture<Negotiated>,
        http2: @escaping (any Channel) -> EventLoopFuture<Negotiated>
    ) {
        self.promise = eventLoop.makePromise()
        self.http1 = http1
        self.http2 = http2
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .detecting(var held) = state else {
            context.fireChannelRead(data)
            return
        }
        var incoming = unwrapInboundIn(data)
        if held == nil { held = incoming } else { held!.writeBuffer(&incoming) }
        let bytes = held!.readableBytesView
        let preface = Self.preface
        let compared = min(bytes.count, preface.count)
        guard bytes.prefix(compared).elementsEqual(preface.prefix(compared)) else {
            decide(http1, context: context, held: held!)
            return
        }
        if bytes.count >= preface.count {
            decide(http2, context: context, held: held!)
        } else {
            state = .detecting(held)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .detecting = state {
            state = .decided
            promise.fail(ChannelError.eof)
        }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if case .detecting = state {
            state = .decided
            promise.fail(ChannelError.ioOnClosedChannel)
        }
    }

    private func decide(
        _ configure: (any Channel) -> EventLoopFuture<Negotiated>, context: ChannelHandlerContext, held: ByteBuffer
    ) {
        state = .decided
        let channel = context.channel
        let configured = configure(channel)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        configured.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(let negotiated):
                context.fireChannelRead(NIOAny(held))
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                handler.promise.succeed(negotiated)
            case .failure(let error):
                handler.promise.fail(error)
                context.close(promise: nil)
            }
        }
    }
}
