import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Policy
import ServiceLifecycle
import Synchronization

/// The plain HTTP/1.1 listener.
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

    /// Binds and serves until cancelled.
    /// - Parameter onListening: called with the bound port once the listener is up.
    func run(onListening: @Sendable (Int) -> Void = { _ in }) async throws {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: true, withErrorHandling: true)
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8))
                    )
                }
            }
        onListening(listener.channel.localAddress?.port ?? port)
        logger.notice("listening", metadata: ["address": "\(host):\(listener.channel.localAddress?.port ?? port)"])
        let counter = Atomic<Int>(0)
        let tracker = connections
        let logger = logger
        let onShutdown = onShutdown
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await listener.executeThenClose { connections in
                    for try await connection in connections {
                        let number = counter.add(1, ordering: .relaxed).newValue
                        group.addTask {
                            await self.serve(connection, number: number)
                        }
                    }
                }
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

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, number: Int) async {
        let remote = connection.channel.remoteAddress?.ipAddress ?? "unknown"
        let allocator = connection.channel.allocator
        metrics.openConnections.increment()
        defer { metrics.openConnections.decrement() }
        guard connections.opened(number, channel: connection.channel) else {
            connection.channel.close(promise: nil)
            return
        }
        defer { connections.closed(number) }
        do {
            try await connection.executeThenClose { inbound, outbound in
                let stream = InboundRequestStream(inbound)
                var sequence = 0
                while let head = try await stream.nextHead() {
                    connections.setBusy(number, true)
                    sequence += 1
                    stream.resetForNextRequest()
                    let writer = ResponseWriter(outbound: outbound, allocator: allocator, requestMethod: head.method)
                    writer.closeWhen = { [connections] in connections.isShuttingDown }
                    writer.peer = remote
                    let request = IncomingRequest(
                        head: head, body: RequestBody(stream: stream), remoteAddress: remote, id: "\(number)-\(sequence)")
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
                                status: .internalServerError,
                                error: RegistryErrorBody(code: "UNKNOWN", message: "internal error"))
                        }
                        return
                    }
                    if writer.closeConnection || !head.isKeepAlive { return }
                    guard connections.setBusy(number, false) else { return }
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
            }
        } catch {
            logger.debug("connection closed with error", metadata: ["peer": "\(remote)", "error": "\(error)"])
        }
    }
}
