import NIOCore
import NIOHTTP1

/// The forwarding core on the client side of an HTTP/1.1 connection or an HTTP/2 stream.
///
/// It sits in front of the asynchronous request handler. For each request head it asks the
/// ``RequestAdmission``; a request admitted there is relayed to the registry from here, on the
/// channel's event loop: its head rewritten, its body `ByteBuffer`s passed to an upstream
/// connection of the same loop as they come, the response parts passed back the same way. Each
/// side reads only while the other can take more (swift-nio-examples' `GlueHandler`). A request
/// not admitted passes through untouched to the asynchronous handler, which may still hand the
/// forwarding to this core (``ForwardingHandle``) with the body pushed from its task. The
/// asynchronous handler (an `NIOAsyncChannel` and its task) is added behind this one only when
/// the first request is handed off: a connection or stream served entirely from here has none.
///
/// States: `idle` → `exchanging` (admitted here) → `idle`; `idle` → `handedOff` (the
/// asynchronous handler owns the request, possibly with an exchange whose body it pushes) →
/// `idle` once its response has ended; `closed` at the end.
final class ForwardingHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        /// Relaying a request admitted here; its body comes through this handler.
        case exchanging
        /// The asynchronous handler owns the request; `exchange` is set if it asked for forwarding.
        case handedOff
        /// Answered at once; the request's end is still to come (`close`: then close).
        case answered(close: Bool)
        /// The response went out before the request body ended: the connection closes.
        case discarding
        case closed
    }

    /// Where an exchange's request body comes from.
    private enum BodySource {
        /// Through this handler's `channelRead`.
        case pipeline
        /// Pushed by the asynchronous handler; it learns the outcome from the promise.
        case pushed(EventLoopPromise<ExchangeOutcome>)
    }

    /// One exchange in flight.
    private struct Exchange {
        let request: any ForwardedRequest
        let source: BodySource
        let clientKeepAlive: Bool
        let isHEAD: Bool
        var upstream: UpstreamConnection?
        /// Body parts that arrived before the upstream connection was ready.
        var waiting: [HTTPClientRequestPart] = []
        var requestEnded = false
        var responseHeadSent = false
        /// The registry's response is being dropped (the client got a local answer).
        var dropping = false
        var upstreamKeepAlive = true
        var outcome = ExchangeOutcome()
    }

    private let admission: (any RequestAdmission)?
    private let pool: any UpstreamConnectionSource
    private let connections: ConnectionTracker
    private let connectionNumber: Int
    private let sequence: RequestSequence
    private let isHTTP2: Bool
    private let clientAddress: @Sendable (HTTPHeaders) -> String
    /// Adds the asynchronous handler behind this one when the first request is handed off (an
    /// HTTP/2 stream gets no task, and no `NIOAsyncChannel`, unless one of its requests needs
    /// them); `nil` if it was there from the start.
    private var attachAsynchronousHandler: ((ForwardingHandler, any Channel) throws -> Void)?

    private var state = State.idle
    private var exchange: Exchange?
    private var context: ChannelHandlerContext?
    /// A client `read` held back until the upstream connection can take more.
    private var pendingRead = false
    /// Pushers of a handed-off body waiting for the upstream connection.
    private var connectionWaiters: [EventLoopPromise<Void>] = []

    /// - Parameters:
    ///   - admission: decides request heads on the loop; `nil` hands every request off.
    ///   - pool: the upstream connections.
    ///   - connections: the open connections, for graceful shutdown.
    ///   - connectionNumber: this connection's number in `connections` and in request ids.
    ///   - sequence: request numbers on this connection, shared with the asynchronous handler.
    ///   - isHTTP2: whether this is an HTTP/2 stream (one request, closes by itself).
    ///   - clientAddress: the client's address for a request's headers.
    ///   - attachAsynchronousHandler: adds the asynchronous handler behind this one, on the loop,
    ///     just before the first request handed off reaches it (`nil`: it is there already).
    init(
        admission: (any RequestAdmission)?, pool: any UpstreamConnectionSource, connections: ConnectionTracker, connectionNumber: Int,
        sequence: RequestSequence, isHTTP2: Bool, clientAddress: @escaping @Sendable (HTTPHeaders) -> String,
        attachAsynchronousHandler: ((ForwardingHandler, any Channel) throws -> Void)? = nil
    ) {
        self.attachAsynchronousHandler = attachAsynchronousHandler
        self.admission = admission
        self.pool = pool
        self.connections = connections
        self.connectionNumber = connectionNumber
        self.sequence = sequence
        self.isHTTP2 = isHTTP2
        self.clientAddress = clientAddress
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        attachAsynchronousHandler = nil
    }

    // MARK: Client → Portcullis

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .idle:
            guard case .head(let head) = part else {
                context.fireChannelRead(data)
                return
            }
            let client = ClientRequest(
                remoteAddress: clientAddress(head.headers), id: "\(connectionNumber)-\(sequence.next())", isHTTP2: isHTTP2)
            guard let admission, let admitted = admission.admit(head, client: client) else {
                if let attach = attachAsynchronousHandler {
                    attachAsynchronousHandler = nil
                    do {
                        try attach(self, context.channel)
                    } catch {
                        state = .closed
                        context.close(promise: nil)
                        return
                    }
                }
                state = .handedOff
                sequence.handOff(id: client.id, remoteAddress: client.remoteAddress)
                context.fireChannelRead(data)
                return
            }
            // An HTTP/2 connection counts its streams itself (HTTP2IdleConnectionHandler).
            if !isHTTP2 { connections.setBusy(connectionNumber, true) }
            switch admitted {
            case .forward(let request):
                state = .exchanging
                begin(request, source: .pipeline, keepAlive: head.isKeepAlive, isHEAD: head.method == .HEAD, context: context)
            case .respond(let response):
                answerAtOnce(response, keepAlive: head.isKeepAlive, isHEAD: head.method == .HEAD, context: context)
            }
        case .exchanging:
            relayRequestPart(part)
        case .handedOff:
            context.fireChannelRead(data)
        case .answered(let close):
            guard case .end = part else { return }
            let stayOpen = isHTTP2 || connections.setBusy(connectionNumber, false)
            if close || (!stayOpen && !isHTTP2) {
                state = .closed
                context.close(promise: nil)
            } else {
                state = .idle
            }
        case .discarding, .closed:
            break
        }
    }

    /// Writes a response decided on the loop; the request's end is awaited in `answered`.
    private func answerAtOnce(_ response: LocalResponse, keepAlive: Bool, isHEAD: Bool, context: ChannelHandlerContext) {
        var headers = response.headers
        headers.replaceOrAdd(name: "content-length", value: String(response.body.count))
        let close = !isHTTP2 && (!keepAlive || connections.isShuttingDown)
        // The client learns from the response that the connection ends with it (RFC 9112 §9.6).
        if close { headers.replaceOrAdd(name: "connection", value: "close") }
        state = .answered(close: close)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
        if !response.body.isEmpty && !isHEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func relayRequestPart(_ part: HTTPServerRequestPart) {
        guard var exchange, case .pipeline = exchange.source, !exchange.requestEnded else { return }
        let upstreamPart: HTTPClientRequestPart
        switch part {
        case .head:
            return
        case .body(let buffer):
            exchange.outcome.bytesIn += buffer.readableBytes
            upstreamPart = .body(.byteBuffer(buffer))
        case .end(let trailers):
            exchange.requestEnded = true
            upstreamPart = .end(trailers)
        }
        if let upstream = exchange.upstream {
            upstream.write(upstreamPart)
            if exchange.requestEnded { upstream.flush() }
        } else {
            exchange.waiting.append(upstreamPart)
        }
        self.exchange = exchange
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .exchanging = state, let upstream = exchange?.upstream { upstream.flush() }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        // While a body is relayed from here, read the client only as fast as the registry takes it.
        if case .exchanging = state, let exchange, !exchange.requestEnded, !(exchange.upstream?.isWritable ?? false) {
            pendingRead = true
            return
        }
        context.read()
    }

    // MARK: Starting an exchange

    private func begin(_ request: any ForwardedRequest, source: BodySource, keepAlive: Bool, isHEAD: Bool, context: ChannelHandlerContext) {
        exchange = Exchange(request: request, source: source, clientKeepAlive: keepAlive, isHEAD: isHEAD)
        let endpoint = request.endpoint
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        pool.acquire(endpoint, on: context.eventLoop, silenceTimeout: request.silenceTimeout).whenComplete { result in
            loopBound.value.connected(result, for: request)
        }
    }

    private func connected(_ result: Result<UpstreamConnection, any Error>, for request: any ForwardedRequest) {
        guard var exchange, exchange.request === request, exchange.upstream == nil else {
            // The exchange ended meanwhile (the client went away).
            if case .success(let upstream) = result { upstream.close() }
            return
        }
        let waiters = connectionWaiters
        connectionWaiters = []
        switch result {
        case .failure(let error):
            for waiter in waiters { waiter.fail(error) }
            upstreamFailed(error)
        case .success(let upstream):
            defer { for waiter in waiters { waiter.succeed() } }
            upstream.delegate = self
            exchange.upstream = upstream
            let waiting = exchange.waiting
            exchange.waiting = []
            self.exchange = exchange
            upstream.write(.head(request.upstreamHead))
            for part in waiting { upstream.write(part) }
            upstream.flush()
            if pendingRead && upstream.isWritable, let context {
                pendingRead = false
                context.read()
            }
        }
    }

    // MARK: Portcullis → client

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Responses of the asynchronous handler pass through; their end makes this handler idle.
        if case .handedOff = state, exchange == nil, case .end = unwrapOutboundIn(data) {
            state = .idle
        }
        context.write(data, promise: promise)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let upstream = exchange?.upstream { upstream.resumeReads() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if var exchange {
            exchange.upstream?.close()
            exchange.upstream = nil
            exchange.outcome.failure = exchange.requestEnded ? .clientGoneDuringResponse : .clientGoneDuringRequest
            exchange.outcome.closesConnection = true
            exchange.outcome.duringShutdown = connections.isShuttingDown
            self.exchange = exchange
            finish(context: context, closeClient: false)
        }
        state = .closed
        context.fireChannelInactive()
    }

    // MARK: Finishing

    /// Ends the current exchange: tells the request, returns or closes the upstream connection,
    /// writes `last` (the response's end) and (for a request admitted here) decides the client
    /// connection's fate.
    ///
    /// The state is settled before `last` is written: writing a response's end makes NIO's
    /// pipeline handler deliver the next pipelined request at once, inside that write.
    private func finish(context: ChannelHandlerContext, closeClient: Bool, last: HTTPServerResponsePart? = nil) {
        guard let exchange else { return }
        self.exchange = nil
        for waiter in connectionWaiters { waiter.fail(ChannelError.ioOnClosedChannel) }
        connectionWaiters = []
        var outcome = exchange.outcome
        if let upstream = exchange.upstream {
            let reusable = outcome.completed && exchange.requestEnded && exchange.upstreamKeepAlive && !exchange.dropping
            // Paused for this client's backpressure; an idle connection reads (to see a close),
            // and the next exchange on it must.
            if reusable { upstream.resumeReads() }
            pool.release(upstream, endpoint: exchange.request.endpoint, reusable: reusable)
        }
        let unfinishedBody = !exchange.requestEnded
        switch exchange.source {
        case .pipeline:
            let close = closeClient || outcome.closesConnection || (!isHTTP2 && !exchange.clientKeepAlive) || unfinishedBody
            outcome.closesConnection = close
            exchange.request.finished(outcome)
            let stayOpen = isHTTP2 || connections.setBusy(connectionNumber, false)
            if case .closed = state {
                if let last { context.writeAndFlush(wrapOutboundOut(last), promise: nil) }
                return
            }
            if close || (!stayOpen && !isHTTP2) {
                state = unfinishedBody ? .discarding : .closed
                if let last { context.writeAndFlush(wrapOutboundOut(last), promise: nil) }
                context.close(promise: nil)
            } else {
                state = .idle
                if let last { context.writeAndFlush(wrapOutboundOut(last), promise: nil) }
                if pendingRead, case .idle = state {
                    pendingRead = false
                    context.read()
                }
            }
        case .pushed(let promise):
            outcome.closesConnection = outcome.closesConnection || closeClient
            exchange.request.finished(outcome)
            if case .closed = state {
            } else {
                state = .idle
            }
            if let last { context.writeAndFlush(wrapOutboundOut(last), promise: nil) }
            if closeClient { context.close(promise: nil) }
            promise.succeed(outcome)
        }
    }
}

// MARK: Registry → client

extension ForwardingHandler: UpstreamConnectionDelegate {
    func upstreamReceived(_ part: HTTPClientResponsePart) {
        guard var exchange, let context else { return }
        switch part {
        case .head(let head):
            // 1xx interim answers (100 Continue to a body already under way) are the registry's business.
            if head.status.code >= 100 && head.status.code < 200 { return }
            exchange.outcome.upstreamStatus = Int(head.status.code)
            exchange.upstreamKeepAlive = head.isKeepAlive
            switch exchange.request.responseHead(head) {
            case .relay(var clientHead):
                if !isHTTP2 && (!exchange.clientKeepAlive || connections.isShuttingDown) {
                    clientHead.headers.replaceOrAdd(name: "connection", value: "close")
                    exchange.outcome.closesConnection = true
                }
                exchange.responseHeadSent = true
                exchange.outcome.status = Int(clientHead.status.code)
                self.exchange = exchange
                context.write(wrapOutboundOut(.head(clientHead)), promise: nil)
            case .answer(let response):
                exchange.dropping = true
                exchange.upstreamKeepAlive = false
                exchange.upstream?.close()
                exchange.upstream = nil
                self.exchange = exchange
                answer(response, context: context)
            }
        case .body(let buffer):
            guard exchange.responseHeadSent else { return }
            exchange.outcome.bytesOut += buffer.readableBytes
            self.exchange = exchange
            if !exchange.isHEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
                if !context.channel.isWritable { exchange.upstream?.pauseReads() }
            }
        case .end(let trailers):
            guard exchange.responseHeadSent else { return }
            exchange.outcome.completed = true
            self.exchange = exchange
            finish(context: context, closeClient: false, last: .end(trailers))
        }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        guard isWritable, pendingRead, let context, case .exchanging = state else { return }
        pendingRead = false
        context.read()
    }

    func upstreamFailed(_ error: any Error) {
        guard var exchange, let context else { return }
        exchange.upstream = nil
        if exchange.responseHeadSent {
            // Part of the response is out: the client can only learn of the break by the close.
            exchange.outcome.failure = .upstreamBrokeResponse(error)
            exchange.outcome.closesConnection = true
            self.exchange = exchange
            context.flush()
            finish(context: context, closeClient: true)
            return
        }
        exchange.outcome.failure = .upstreamFailedBeforeResponse(error)
        self.exchange = exchange
        answer(exchange.request.upstreamFailed(error), context: context)
    }

    /// Answers the client with a response of Portcullis's own and ends the exchange.
    private func answer(_ response: LocalResponse, context: ChannelHandlerContext) {
        guard var exchange else { return }
        var headers = response.headers
        headers.replaceOrAdd(name: "content-length", value: String(response.body.count))
        // A request whose body is still coming cannot keep its connection: the rest of the body
        // would be read as the next request.
        if !isHTTP2 && (!exchange.requestEnded || !exchange.clientKeepAlive || connections.isShuttingDown) {
            headers.replaceOrAdd(name: "connection", value: "close")
            exchange.outcome.closesConnection = true
        }
        exchange.outcome.status = Int(response.status.code)
        exchange.outcome.bytesOut = exchange.isHEAD ? 0 : response.body.count
        exchange.outcome.completed = true
        self.exchange = exchange
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
        if !response.body.isEmpty && !exchange.isHEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        finish(context: context, closeClient: false, last: .end(nil))
    }
}

// MARK: Forwarding for the asynchronous handler

extension ForwardingHandler {
    /// Starts an exchange for the request the asynchronous handler owns; its body is pushed
    /// with ``pushBody(_:)`` and ``pushEnd()``. Call on the event loop.
    func forwardHandedOff(
        _ request: any ForwardedRequest, keepAlive: Bool, isHEAD: Bool, on eventLoop: any EventLoop
    ) -> EventLoopFuture<ExchangeOutcome> {
        guard let context, case .handedOff = state, exchange == nil else {
            return eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        let promise = context.eventLoop.makePromise(of: ExchangeOutcome.self)
        begin(request, source: .pushed(promise), keepAlive: keepAlive, isHEAD: isHEAD, context: context)
        return promise.futureResult
    }

    /// Sends a body part of a handed-off request to the registry; the future completes once it
    /// is written (the pusher's backpressure), or fails if the exchange is over.
    func pushBody(_ part: HTTPClientRequestPart, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard let context else { return eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        guard var exchange, case .pushed = exchange.source, !exchange.requestEnded else {
            return context.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        switch part {
        case .body(let data): exchange.outcome.bytesIn += data.readableBytes
        case .end: exchange.requestEnded = true
        case .head: return context.eventLoop.makeFailedFuture(ChannelError.inappropriateOperationForState)
        }
        self.exchange = exchange
        guard let upstream = exchange.upstream else {
            // Still connecting: queued; the pusher waits for the connection.
            self.exchange?.waiting.append(part)
            let promise = context.eventLoop.makePromise(of: Void.self)
            connectionWaiters.append(promise)
            return promise.futureResult
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        upstream.write(part, promise: promise)
        upstream.flush()
        return promise.futureResult
    }
}
