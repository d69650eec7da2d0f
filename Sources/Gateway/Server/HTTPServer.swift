import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import PortcullisConfiguration
import Policy
import ServiceLifecycle
import Synchronization

/// The listener: plain HTTP/1.1 (and, if enabled, HTTP/2 with prior knowledge), or TLS with
/// HTTP/2 and HTTP/1.1 offered by ALPN, optionally behind a PROXY protocol sender.
///
/// Each connection is served in its own child task of a discarding task group; one failing
/// connection never stops the server. Requests on a connection are handled one at a time, and
/// their bodies are read straight off the connection by whoever consumes them.
struct HTTPServer: Sendable {
    /// Address to bind.
    var host: String
    /// Port to bind (0 for any free port).
    var port: Int
    /// Answers requests.
    var handler: any RequestHandler
    /// Logs connection-level failures.
    var logger: Logger
    /// Counts connections and requests.
    var metrics: GatewayMetrics
    /// Open connections, for graceful shutdown.
    var connections = ConnectionTracker()
    /// Called when a graceful shutdown begins (readiness turns false).
    var onShutdown: @Sendable () -> Void = {}

    /// Request bodies left unread by a handler are drained up to this size to keep the
    /// connection; beyond it the connection is closed.
    var drainLimit = 1 << 20

    /// The TLS context for a new connection (`nil` serves plain HTTP/1.1); read per connection,
    /// so a reloaded certificate applies to new connections without a restart.
    var tlsContext: @Sendable () -> NIOSSLContext? = { nil }
    /// Whether every connection starts with a PROXY protocol header.
    var proxyProtocol = false
    /// Whether a plain listener also takes HTTP/2 with prior knowledge (h2c), told apart from
    /// HTTP/1.1 by the connection preface.
    var h2c = false
    /// Seconds an HTTP/1.1 connection may take to deliver a complete request head, counted from
    /// its opening or the end of the previous response (idle keep-alive and slowloris bound).
    var requestHeadTimeout: Double = 60
    /// Seconds a client may take nothing of a response that has more to come (it stopped reading).
    var responseStallTimeout: Double = 60
    /// Peers whose `X-Forwarded-For` is believed.
    var trustedProxies: @Sendable () -> [AddressRange] = { [] }
    /// Decides request heads on the event loop; admitted requests are forwarded from the
    /// pipeline (`nil`: every request goes to ``handler``).
    var admission: (any RequestAdmission)?
    /// Upstream connections of the forwarding core.
    var upstreamPool = UpstreamConnectionPool()
    /// Sets an accepted connection's socket options, on its event loop. A failure is logged and
    /// closes that connection only; the listener goes on accepting.
    var prepareConnection: @Sendable (any Channel) throws -> Void = HTTPServer.disableNagle

    /// `TCP_NODELAY` (`IPPROTO_TCP`): responses and token answers go out without waiting for an
    /// acknowledgement. Needs no privilege.
    static func disableNagle(_ channel: any Channel) throws {
        try channel.syncOptions?.setOption(.tcpOption(.tcp_nodelay), value: 1)
    }

    typealias PartsChannel = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    /// An HTTP/1.1 connection or HTTP/2 stream as the request loop serves it: the parts the
    /// forwarding core handed off, and the way back into that core.
    struct ServedChannel: Sendable {
        let parts: PartsChannel
        let forwarding: ForwardingHandle
        let sequence: RequestSequence
    }

    /// An HTTP/1.1 connection as the request loop gets it: the connection, wrapped for the request
    /// loop when its forwarding core first hands a request off, or `nil` if it closed without one.
    /// A connection whose requests are all forwarded from the event loop gets no `NIOAsyncChannel`.
    typealias HandedOffConnection = EventLoopFuture<ServedChannel?>

    /// The streams of an HTTP/2 connection that handed a request to the request loop, as they do.
    /// The forwarding core serves the others on the event loop alone: no task, no `NIOAsyncChannel`.
    typealias HandedOffStreams = AsyncStream<ServedChannel>

    typealias Negotiated = NIONegotiatedHTTPVersion<HandedOffConnection, HandedOffStreams>

    /// What each connection's forwarding cores share.
    struct ForwardingSetup: Sendable {
        let admission: (any RequestAdmission)?
        /// The upstream connections (the server's ``UpstreamConnectionPool``; a test's own source).
        let pool: any UpstreamConnectionSource
        let connections: ConnectionTracker
        let number: Int
        let clientAddress: @Sendable (HTTPHeaders) -> String

        func handler(
            sequence: RequestSequence, isHTTP2: Bool, attachAsynchronousHandler: ((ForwardingHandler, any Channel) throws -> Void)? = nil
        ) -> ForwardingHandler {
            ForwardingHandler(
                admission: admission, pool: pool, connections: connections, connectionNumber: number, sequence: sequence, isHTTP2: isHTTP2,
                clientAddress: clientAddress, attachAsynchronousHandler: attachAsynchronousHandler)
        }
    }

    /// A connection as the accept loop receives it.
    enum Accepted: Sendable {
        /// Plain HTTP/1.1.
        case plain(HandedOffConnection, any Channel, ConnectionInfo, number: Int)
        /// HTTP/1.1 or HTTP/2, once ALPN (TLS) or the first bytes (h2c) have told which.
        case negotiating(EventLoopFuture<Negotiated>, any Channel, ConnectionInfo, number: Int)

        var channel: any Channel {
            switch self {
            case .plain(_, let channel, _, _), .negotiating(_, let channel, _, _): channel
            }
        }

        var number: Int {
            switch self {
            case .plain(_, _, _, let number), .negotiating(_, _, _, let number): number
            }
        }
    }

    /// Adds ALPN negotiation after the TLS handler: `h2` gets the HTTP/2 pipeline, `http/1.1`
    /// (or no ALPN at all) the HTTP/1.1 one; anything else closes the connection.
    static func negotiateHTTPVersion(
        on channel: any Channel,
        http1: @escaping @Sendable (any Channel) -> EventLoopFuture<HandedOffConnection>,
        http2: @escaping @Sendable (any Channel) -> EventLoopFuture<HandedOffStreams>
    ) -> EventLoopFuture<EventLoopFuture<Negotiated>> {
        channel.eventLoop.makeCompletedFuture {
            let negotiation = NIOTypedApplicationProtocolNegotiationHandler<Negotiated> { result in
                switch result {
                case .negotiated("h2"):
                    return http2(channel).map { .http2($0) }
                case .negotiated("http/1.1"), .fallback:
                    return http1(channel).map { .http1_1($0) }
                case .negotiated(let other):
                    return channel.close().flatMap { channel.eventLoop.makeFailedFuture(HTTPServerProtocolViolation(message: "ALPN chose \(other)")) }
                }
            }
            try channel.pipeline.syncOperations.addHandler(negotiation)
            return negotiation.protocolNegotiationResult
        }
    }

    static let backPressure = NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark(lowWatermark: 2, highWatermark: 8)

    /// Adds the HTTP/1.1 server pipeline: codec, protocol error answers, head and stall
    /// timeouts, and the forwarding core, which wraps the connection for the request loop when it
    /// first hands a request off (the returned future's value; `nil` once it closed without one).
    static func configureHTTP1(
        on channel: any Channel, logger: Logger, headTimeout: TimeAmount, stallTimeout: TimeAmount, forwarding: ForwardingSetup
    ) throws -> HandedOffConnection {
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: false)
        try channel.pipeline.syncOperations.addHandler(HTTPProtocolErrorHandler(logger: logger))
        try channel.pipeline.syncOperations.addHandler(RequestHeadTimeoutHandler(timeout: headTimeout, stallTimeout: stallTimeout))
        let handedOff = channel.eventLoop.makePromise(of: ServedChannel?.self)
        let sequence = RequestSequence()
        let handler = forwarding.handler(sequence: sequence, isHTTP2: false) { handler, channel in
            handedOff.succeed(try wrapped(channel, behind: handler, sequence: sequence))
        }
        try channel.pipeline.syncOperations.addHandler(handler)
        // The hand-off happens on the loop before the close, if at all; a promise completed
        // already ignores the second completion.
        channel.closeFuture.whenComplete { _ in handedOff.succeed(nil) }
        return handedOff.futureResult
    }

    /// Wraps a connection or stream for the request loop, behind its forwarding core, on the loop.
    private static func wrapped(_ channel: any Channel, behind handler: ForwardingHandler, sequence: RequestSequence) throws -> ServedChannel {
        let parts = try PartsChannel(wrappingChannelSynchronously: channel, configuration: .init(backPressureStrategy: backPressure))
        return ServedChannel(parts: parts, forwarding: ForwardingHandle(handler, eventLoop: channel.eventLoop), sequence: sequence)
    }

    /// Adds the HTTP/2 server pipeline: each stream speaks HTTP/1-style parts with its own head
    /// and stall timeouts; the connection is closed once it has had no stream for `headTimeout`.
    ///
    /// A stream's request admitted by the forwarding core is relayed on the event loop and never
    /// leaves it. Only a stream whose request is handed off gets wrapped for the request loop, at
    /// that moment, and is yielded to the returned sequence, which ends when the connection closes.
    static func configureHTTP2(
        on channel: any Channel, headTimeout: TimeAmount, stallTimeout: TimeAmount, forwarding: ForwardingSetup
    ) throws -> HandedOffStreams {
        let idle = HTTP2IdleConnectionHandler(timeout: headTimeout, drainTimeout: stallTimeout, eventLoop: channel.eventLoop)
        let (handedOff, continuation) = HandedOffStreams.makeStream()
        channel.closeFuture.whenComplete { _ in continuation.finish() }
        let configuration = NIOHTTP2Handler.Configuration()
        _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: configuration.connection, streamConfiguration: configuration.stream,
            streamDelegate: idle.streamDelegate
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                try stream.pipeline.syncOperations.addHandler(
                    RequestHeadTimeoutHandler(timeout: headTimeout, stallTimeout: stallTimeout, isStream: true))
                let sequence = RequestSequence()
                let handler = forwarding.handler(sequence: sequence, isHTTP2: true) { handler, stream in
                    continuation.yield(try wrapped(stream, behind: handler, sequence: sequence))
                }
                try stream.pipeline.syncOperations.addHandler(handler)
            }
        }
        try channel.pipeline.syncOperations.addHandler(idle)
        return handedOff
    }

    /// Binds and serves until cancelled, or until a graceful shutdown has drained every connection.
    /// - Parameter onListening: called with the bound port once the listener is up.
    func run(onListening: @Sendable (Int) -> Void = { _ in }) async throws {
        let tlsContext = tlsContext
        let proxyProtocol = proxyProtocol
        let h2c = h2c
        let headTimeout = TimeAmount.milliseconds(Int64(requestHeadTimeout * 1000))
        let stallTimeout = TimeAmount.milliseconds(Int64(responseStallTimeout * 1000))
        let logger = logger
        let counter = Atomic<Int>(0)
        let tracker = connections
        let admission = admission
        let pool = upstreamPool
        let trustedProxies = trustedProxies
        let prepareConnection = prepareConnection
        // No child channel options: the bootstrap would report their failure on the listener,
        // which ends the accept loop. Each connection is prepared in its initializer instead,
        // where a failure closes it alone.
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .bind(host: host, port: port) { channel -> EventLoopFuture<Accepted> in
                let peer = channel.remoteAddress?.ipAddress ?? "unknown"
                do {
                    try prepareConnection(channel)
                } catch {
                    logger.warning("connection refused: its socket could not be set up", metadata: ["peer": "\(peer)", "error": "\(error)"])
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(error)
                }
                let info = ConnectionInfo()
                let number = counter.add(1, ordering: .relaxed).newValue
                let forwarding = ForwardingSetup(
                    admission: admission, pool: pool, connections: tracker, number: number,
                    clientAddress: { headers in Self.clientAddress(peer: peer, info: info, headers: headers, trusted: trustedProxies()) })
                let http1 = { @Sendable (http1: any Channel) in
                    http1.eventLoop.makeCompletedFuture {
                        try Self.configureHTTP1(on: http1, logger: logger, headTimeout: headTimeout, stallTimeout: stallTimeout, forwarding: forwarding)
                    }
                }
                let http2 = { @Sendable (http2: any Channel) in
                    http2.eventLoop.makeCompletedFuture {
                        try Self.configureHTTP2(on: http2, headTimeout: headTimeout, stallTimeout: stallTimeout, forwarding: forwarding)
                    }
                }
                let context = tlsContext()
                do {
                    if proxyProtocol {
                        try channel.pipeline.syncOperations.addHandler(ProxyProtocolDecoder(info: info))
                    }
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    } else if !h2c {
                        let connection = try Self.configureHTTP1(
                            on: channel, logger: logger, headTimeout: headTimeout, stallTimeout: stallTimeout, forwarding: forwarding)
                        return channel.eventLoop.makeSucceededFuture(.plain(connection, channel, info, number: number))
                    }
                } catch {
                    logger.warning("connection refused: its pipeline could not be set up", metadata: ["peer": "\(peer)", "error": "\(error)"])
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(error)
                }
                // The TLS handshake and ALPN, or the h2c preface, get the head timeout too; each
                // protocol's own timeout handler takes over once negotiation is done.
                let negotiationDeadline = channel.eventLoop.scheduleTask(in: headTimeout) { channel.close(promise: nil) }
                let negotiated: EventLoopFuture<EventLoopFuture<Negotiated>>
                if context != nil {
                    negotiated = Self.negotiateHTTPVersion(on: channel, http1: http1, http2: http2)
                } else {
                    negotiated = channel.eventLoop.makeCompletedFuture {
                        let detector = HTTP2PriorKnowledgeDetector<Negotiated>(
                            eventLoop: channel.eventLoop, http1: { http1($0).map { .http1_1($0) } }, http2: { http2($0).map { .http2($0) } })
                        try channel.pipeline.syncOperations.addHandler(detector)
                        return detector.result
                    }
                }
                return negotiated.map { negotiated in
                    negotiated.whenComplete { _ in negotiationDeadline.cancel() }
                    return .negotiating(negotiated, channel, info, number: number)
                }
            }
        try await ListenerErrorHandler.install(on: listener.channel, logger: logger)
        onListening(listener.channel.localAddress?.port ?? port)
        logger.notice("listening", metadata: ["address": "\(host):\(listener.channel.localAddress?.port ?? port)"])
        let onShutdown = onShutdown
        try await withGracefulShutdownHandler {
            // Cancellation means the shutdown grace period is over: requests still in flight are
            // cut by closing their connections (a request body being streamed to the registry by
            // the HTTP client would not notice the cancellation of this task).
            try await withTaskCancellationHandler {
                try await withThrowingDiscardingTaskGroup { group in
                    try await listener.executeThenClose { connections in
                        for try await connection in connections {
                            group.addTask {
                                await self.serve(connection)
                            }
                        }
                    }
                }
            } onCancel: {
                tracker.closeAll()
                pool.closeIdle()
            }
        } onGracefulShutdown: {
            // Stop accepting, close idle connections, let busy ones finish their request.
            logger.notice("graceful shutdown: no longer accepting connections; draining requests in flight")
            onShutdown()
            listener.channel.close(promise: nil)
            tracker.beginShutdown()
        }
        logger.notice("all connections drained")
    }

    /// A bounded label for a request path.
    static func routeLabel(_ path: String) -> String {
        switch path {
        case "/token", "/metrics", "/healthz", "/readyz": return String(path.dropFirst())
        default:
            guard path.hasPrefix("/v2/") else { return "other" }
            return (try? Route(path: path))?.endpoint.template ?? "invalid"
        }
    }

    private func serve(_ accepted: Accepted) async {
        let number = accepted.number
        metrics.openConnections.increment()
        defer { metrics.openConnections.decrement() }
        guard connections.opened(number, channel: accepted.channel) else {
            accepted.channel.close(promise: nil)
            return
        }
        defer { connections.closed(number) }
        switch accepted {
        case .plain(let handedOff, _, let info, _):
            if let connection = try? await handedOff.get() {
                await serveRequests(on: connection, number: number, info: info, isHTTP2: false)
            }
        case .negotiating(let negotiation, let channel, let info, _):
            do {
                switch try await negotiation.get() {
                case .http1_1(let handedOff):
                    if let connection = try await handedOff.get() {
                        await serveRequests(on: connection, number: number, info: info, isHTTP2: false)
                    }
                case .http2(let handedOff):
                    // A shutdown says GOAWAY here and closes once the streams in flight have ended.
                    connections.servesHTTP2(number) { [channel] in
                        channel.eventLoop.execute {
                            try? channel.pipeline.syncOperations.handler(type: HTTP2IdleConnectionHandler.self).beginShutdown()
                        }
                    }
                    await withDiscardingTaskGroup { group in
                        for await stream in handedOff {
                            group.addTask { await self.serveRequests(on: stream, number: number, info: info, isHTTP2: true) }
                        }
                    }
                }
            } catch {
                logger.debug("connection ended with error", metadata: ["peer": "\(channel.remoteAddress?.ipAddress ?? "unknown")", "error": "\(error)"])
            }
        }
    }

    /// The client's address: the PROXY header's source, or the peer; a trusted peer's
    /// `Forwarded: for=` (or else `X-Forwarded-For`) names the client instead.
    static func clientAddress(peer: String, info: ConnectionInfo, headers: HTTPHeaders, trusted: [AddressRange]) -> String {
        let direct = info.proxiedClientAddress ?? peer
        guard !trusted.isEmpty, trusted.contains(where: { $0.contains(direct) }) else { return direct }
        if let forwarded = headers["forwarded"].last?.split(separator: ",").last {
            for pair in forwarded.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces).lowercased() == "for" else { continue }
                var value = parts[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                if value.hasPrefix("["), let end = value.firstIndex(of: "]") { value = String(value[value.index(after: value.startIndex)..<end]) }
                if AddressRange.bytes(of: value) != nil { return value }
            }
        }
        if let forwarded = headers["x-forwarded-for"].last?.split(separator: ",").last?.trimmingCharacters(in: .whitespaces),
            AddressRange.bytes(of: forwarded) != nil
        {
            return forwarded
        }
        return direct
    }

    /// Serves the requests of one HTTP/1.1 connection or one HTTP/2 stream.
    private func serveRequests(on served: ServedChannel, number: Int, info: ConnectionInfo, isHTTP2: Bool) async {
        let connection = served.parts
        let peer = (isHTTP2 ? connection.channel.parent?.remoteAddress : connection.channel.remoteAddress)?.ipAddress ?? "unknown"
        let allocator = connection.channel.allocator
        do {
            try await connection.executeThenClose { inbound, outbound in
                let stream = InboundRequestStream(inbound)
                var awaitStreamEnd = false
                while let head = try await stream.nextHead() {
                    // An HTTP/2 connection counts its streams itself (HTTP2IdleConnectionHandler).
                    if !isHTTP2 { connections.setBusy(number, true) }
                    stream.resetForNextRequest()
                    // The forwarding core numbered the request and found its client's address.
                    let (id, remote) = served.sequence.takeHandedOff()
                        ?? ("\(number)-\(served.sequence.next())", Self.clientAddress(peer: peer, info: info, headers: head.headers, trusted: trustedProxies()))
                    let writer = ResponseWriter(outbound: outbound, allocator: allocator, requestMethod: head.method)
                    writer.closeWhen = { [connections] in connections.isShuttingDown }
                    writer.peer = remote
                    writer.isHTTP2 = isHTTP2
                    // A client that asked to close is told so in the response (RFC 9112 §9.6).
                    writer.closeConnection = !isHTTP2 && !head.isKeepAlive
                    let request = IncomingRequest(
                        head: head, body: RequestBody(stream: stream), remoteAddress: remote, id: id, forwarding: served.forwarding)
                    defer {
                        metrics.request(
                            route: Self.routeLabel(request.path), method: head.method.rawValue, status: Int(writer.status?.code ?? 0),
                            bytesIn: stream.bodyBytesRead, bytesOut: writer.bytesWritten)
                    }
                    do {
                        try await handler.handle(request, writer: writer)
                    } catch {
                        logger.error("request failed", metadata: ["request": "\(request.id)", "error": "\(error)"])
                        if !writer.headSent {
                            writer.closeConnection = true
                            try await writer.respond(
                                .unknown,
                                message: "internal error")
                        }
                        return
                    }
                    if isHTTP2 {
                        // A stream carries one request. Once its request and response have both
                        // ended it closes by itself, after the last DATA frame has gone out;
                        // closing it before would reset it (CANCEL) and drop whatever flow control
                        // still holds back, such as the tail of a blob for a slow client. A request
                        // without a body still has its end unread here (nothing consumed it).
                        if writer.ended, stream.bodyState == .streaming, !stream.bodyConsumerStarted,
                            !head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" })
                        {
                            _ = await stream.discardBody(limit: drainLimit)
                        }
                        awaitStreamEnd = writer.ended && (stream.bodyState == .finished || stream.bodyState == .idle)
                        break
                    }
                    if writer.closeConnection || !head.isKeepAlive { break }
                    guard connections.setBusy(number, false) else { break }
                    switch stream.bodyState {
                    case .finished, .idle:
                        continue
                    case .failed:
                        return
                    case .streaming:
                        // A consumer that stopped early may still hold the body: never read after it.
                        if stream.bodyConsumerStarted { return }
                        // A client waiting for 100 Continue will not send the body it announced.
                        if head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) { return }
                        if await !stream.discardBody(limit: drainLimit) { return }
                    }
                }
                // Bounded by the stream's RequestHeadTimeoutHandler: a client that stops taking
                // the response is cut after timeouts.response_stall.
                if awaitStreamEnd { try? await connection.channel.closeFuture.get() }
            }
        } catch {
            logger.debug("connection closed with error", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }
}
