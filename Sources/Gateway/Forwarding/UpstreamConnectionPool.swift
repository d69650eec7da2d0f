import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// Where the forwarding core gets its upstream connections and gives them back.
protocol UpstreamConnectionSource: Sendable {
    /// A connection to `endpoint` whose channel is on `eventLoop`. Called on `eventLoop`.
    /// - Parameter silenceTimeout: how long the registry may send nothing while it owes a response.
    func acquire(_ endpoint: UpstreamEndpoint, on eventLoop: any EventLoop, silenceTimeout: TimeAmount) -> EventLoopFuture<UpstreamConnection>
    /// Takes a connection back after an exchange: kept for reuse when `reusable`, else closed.
    func release(_ connection: UpstreamConnection, endpoint: UpstreamEndpoint, reusable: Bool)
}

/// Keep-alive HTTP/1.1 connections to the registry, kept per event loop.
///
/// A client connection's exchanges take their upstream connection from the pool of the client
/// connection's own event loop, so both channels of an exchange live on one loop and bytes pass
/// between them without a thread hop; no request waits for a connection owned by another loop.
/// A connection goes back to its pool only after a complete exchange; anything else closes it.
final class UpstreamConnectionPool: UpstreamConnectionSource {
    /// The most idle connections kept per event loop.
    let maximumIdlePerLoop: Int
    /// How long an idle connection is kept.
    let idleTimeout: TimeAmount
    /// How long a connection attempt may take.
    let connectTimeout: TimeAmount

    private let loops = Mutex<[ObjectIdentifier: LoopPool]>([:])

    init(maximumIdlePerLoop: Int = 64, idleTimeout: TimeAmount = .seconds(60), connectTimeout: TimeAmount = .seconds(5)) {
        self.maximumIdlePerLoop = maximumIdlePerLoop
        self.idleTimeout = idleTimeout
        self.connectTimeout = connectTimeout
    }

    /// The pool of `eventLoop`, made on first use.
    private func pool(for eventLoop: any EventLoop) -> LoopPool {
        let key = ObjectIdentifier(eventLoop)
        return loops.withLock { loops in
            if let pool = loops[key] { return pool }
            let pool = LoopPool(eventLoop: eventLoop, owner: self)
            loops[key] = pool
            return pool
        }
    }

    /// An idle connection to `endpoint` on `eventLoop`, or a new one. Call on `eventLoop`.
    /// - Parameter silenceTimeout: how long the registry may send nothing while it owes a response.
    func acquire(_ endpoint: UpstreamEndpoint, on eventLoop: any EventLoop, silenceTimeout: TimeAmount) -> EventLoopFuture<UpstreamConnection> {
        pool(for: eventLoop).acquire(endpoint, silenceTimeout: silenceTimeout)
    }

    /// Returns a connection after a complete exchange (`reusable`), or closes it. Call on its loop.
    func release(_ connection: UpstreamConnection, endpoint: UpstreamEndpoint, reusable: Bool) {
        guard reusable, connection.isActive, let channel = connection.channel else {
            connection.close()
            return
        }
        pool(for: channel.eventLoop).park(connection, authority: endpoint.authority)
    }

    /// Closes every idle connection (shutdown).
    func closeIdle() {
        for pool in loops.withLock({ Array($0.values) }) {
            pool.eventLoop.execute { pool.closeAll() }
        }
    }

    /// The connections of one event loop; touched only on that loop.
    final class LoopPool: @unchecked Sendable {
        let eventLoop: any EventLoop
        unowned let owner: UpstreamConnectionPool
        private struct Idle {
            let connection: UpstreamConnection
            let authority: String
            let since: NIODeadline
        }
        private var idle: [Idle] = []
        private var sweeper: Scheduled<Void>?

        init(eventLoop: any EventLoop, owner: UpstreamConnectionPool) {
            self.eventLoop = eventLoop
            self.owner = owner
        }

        func acquire(_ endpoint: UpstreamEndpoint, silenceTimeout: TimeAmount) -> EventLoopFuture<UpstreamConnection> {
            eventLoop.preconditionInEventLoop()
            while let entry = idle.popLast() {
                if entry.connection.isActive && entry.authority == endpoint.authority {
                    entry.connection.silenceTimeout = silenceTimeout
                    return eventLoop.makeSucceededFuture(entry.connection)
                }
                entry.connection.close()
            }
            return connect(endpoint, silenceTimeout: silenceTimeout)
        }

        /// Reads from the registry grow to 256 KiB (NIO's default stops at 64 KiB), nginx's tuned
        /// buffer size: a blob streams in a quarter of the reads and writes; small responses keep
        /// small buffers (the allocator grows only after reads that filled their buffer). One read
        /// per readiness event (`maxMessagesPerRead` 1): a client that stops taking the response
        /// holds at most one such buffer beyond its channel's high watermark, not four (256 slow
        /// clients streaming a blob held 315 MiB with four, 137 MiB with one, 114 MiB at 64 KiB).
        static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 256 * 1024)

        private func connect(_ endpoint: UpstreamEndpoint, silenceTimeout: TimeAmount) -> EventLoopFuture<UpstreamConnection> {
            let tlsContext = endpoint.tlsContext
            let host = endpoint.host
            return ClientBootstrap(group: eventLoop)
                .connectTimeout(owner.connectTimeout)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelOption(.recvAllocator, value: Self.receiveAllocator)
                .channelOption(.maxMessagesPerRead, value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tlsContext {
                            let serverName = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tlsContext, serverHostname: serverName))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(UpstreamConnection(silenceTimeout: silenceTimeout))
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port)
                .flatMapThrowing { channel in
                    try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self)
                }
        }

        func park(_ connection: UpstreamConnection, authority: String) {
            eventLoop.preconditionInEventLoop()
            connection.delegate = nil
            guard idle.count < owner.maximumIdlePerLoop else {
                connection.close()
                return
            }
            idle.append(Idle(connection: connection, authority: authority, since: .now()))
            if sweeper == nil { scheduleSweep() }
        }

        /// One timer per loop closes connections idle for longer than the idle timeout.
        private func scheduleSweep() {
            sweeper = eventLoop.scheduleTask(in: .nanoseconds(owner.idleTimeout.nanoseconds / 2)) { [self] in
                sweeper = nil
                let limit = NIODeadline.now() - owner.idleTimeout
                idle.removeAll { entry in
                    guard entry.since < limit || !entry.connection.isActive else { return false }
                    entry.connection.close()
                    return true
                }
                if !idle.isEmpty { scheduleSweep() }
            }
        }

        func closeAll() {
            for entry in idle { entry.connection.close() }
            idle.removeAll()
            sweeper?.cancel()
            sweeper = nil
        }
    }
}
