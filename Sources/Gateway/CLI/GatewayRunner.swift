import AsyncHTTPClient
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import Policy
import ServiceLifecycle

/// Starts the gateway for a loaded configuration and runs it until cancelled.
enum GatewayRunner {
    /// Sets up logging once per process: `format` lines on standard error at `level`, and
    /// the audit stream (always JSON) at `audit` (`stdout`, `stderr`, `off` or a file).
    static func bootstrapLogging(level: String, format: String = "logfmt", audit: String = "stdout") {
        let parsed = Logger.Level(rawValue: level) ?? .info
        let lineFormat = StructuredLogHandler.Format(rawValue: format) ?? .logfmt
        let main = StructuredLogHandler.Sink(descriptor: STDERR_FILENO)
        let auditSink = audit == "off" ? nil : (try? StructuredLogHandler.Sink.open(audit)) ?? StructuredLogHandler.Sink(descriptor: STDOUT_FILENO)
        LoggingSystem.bootstrap { label in
            if label == auditLabel {
                guard let auditSink else { return SwiftLogNoOpLogHandler() }
                return StructuredLogHandler(label: label, format: .json, sink: auditSink, level: .info)
            }
            return StructuredLogHandler(label: label, format: lineFormat, sink: main, level: parsed)
        }
    }

    /// The logger label of the audit stream.
    static let auditLabel = "portcullis.audit"

    /// Serves `state` until the surrounding task is cancelled.
    static func run(state: GatewayState, logger: Logger, onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let configuration = state.configuration
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.redirectConfiguration = .disallow
        clientConfiguration.decompression = .disabled
        clientConfiguration.timeout = .init(connect: .seconds(5), read: .seconds(Int64(configuration.upstreamResponseTimeout)))
        clientConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: clientConfiguration)
        let holder = StateHolder(state)
        let observability = Observability(metrics: GatewayMetrics(), audit: AuditLog(logger: Logger(label: auditLabel)))
        let throttling = configuration.throttling
        let throttle = AuthenticationThrottle(
            settings: .init(
                maxFailures: throttling.maxFailures, maxFailuresPerAddress: throttling.maxFailuresPerAddress,
                window: Double(throttling.window), cooldown: Double(throttling.cooldown)))
        // `state.store: postgres`: robots, throttling, the push ledger, tag locks and cache
        // invalidations shared with the other replicas (read before serving, when it answers).
        var shared: SharedState?
        if case .postgres(let settings) = configuration.state {
            shared = SharedState(store: try PostgresStateStore(settings, logger: logger), metrics: observability.metrics, logger: logger)
        }
        let reloader = ConfigurationReloader(path: configuration.sourcePath, holder: holder, logger: logger, robots: { [shared] in shared?.robots })
        var authenticator = BasicAuthenticator(
            cache: CredentialCache(),
            throttle: throttle,
            logger: logger, metrics: observability.metrics, keyStore: OIDCKeyStore(client: client),
            // The newest state: reloaded now if a file changed, else whatever is in force (the
            // periodic reload may have swapped it in after the request took its own).
            reloadIfChanged: { reloader.reloadIfChanged(reason: "file changed (an unknown account logged in)") ?? holder.current })
        authenticator.shared = shared
        let readiness = Readiness()
        var proxyHandler = ProxyHandler(
            state: holder, authenticator: authenticator, client: client, logger: logger, observability: observability,
            pushTimes: PushTimeRecorder(logger: logger))
        proxyHandler.shared = shared
        let proxy = proxyHandler
        var router = GatewayRouter(
            tokenEndpoint: TokenEndpoint(state: holder, authenticator: authenticator, logger: logger, observability: observability),
            proxy: proxy,
            readiness: readiness,
            metrics: observability.metrics,
            jwks: { holder.current.jsonWebKeySet },
            jwksPath: { holder.current.configuration.token.jwksPath }
        )
        router.ui = UIHandler(state: holder, authenticator: authenticator, proxy: proxy, logger: logger)
        router.uiEnabled = { holder.current.configuration.ui.enabled }
        var server = HTTPServer(
            host: configuration.listen.host, port: configuration.listen.port, handler: router, logger: logger, metrics: observability.metrics)
        server.admission = router
        server.onShutdown = { readiness.markDraining() }
        server.tlsContext = { holder.current.tlsContext }
        server.proxyProtocol = configuration.proxyProtocol
        server.h2c = configuration.h2c
        server.requestHeadTimeout = Double(configuration.requestHeadTimeout)
        server.responseStallTimeout = Double(configuration.responseStallTimeout)
        server.trustedProxies = { holder.current.trustedProxies }
        logger.notice(
            "portcullis starting",
            metadata: [
                "public_url": "\(configuration.publicURL)", "upstream": "\(configuration.upstream.url)",
                "registry_version": "\(configuration.upstream.registryVersion)", "key_hint": "\(state.upstreamMinter.hint)",
                "rules": "\(configuration.rules.count)",
            ])
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: ServerService(server: server, onListening: onListening))
        ]
        if let admin = configuration.adminListen {
            var adminRouter = router
            adminRouter.adminOnly = true
            var adminServer = HTTPServer(host: admin.host, port: admin.port, handler: adminRouter, logger: logger, metrics: observability.metrics)
            adminServer.requestHeadTimeout = Double(configuration.requestHeadTimeout)
            adminServer.responseStallTimeout = Double(configuration.responseStallTimeout)
            services.append(.init(service: ServerService(server: adminServer, onListening: { _ in })))
        }
        let connections = server.connections
        var sharedServices: [ServiceGroupConfiguration.ServiceConfiguration] = []
        // The store's connection pool runs from before the robots are read until the services
        // (the ledger's last writes among them) have stopped.
        let pool = shared.map { shared in Task { await shared.store.run() } }
        defer { pool?.cancel() }
        if let shared {
            if await shared.prepare(throttle: throttle) { reloader.reload(reason: "robots read from the state store") }
            sharedServices.append(
                .init(service: BackgroundService {
                    await shared.run(
                        throttle: throttle,
                        robotsChanged: { reloader.reload(reason: "robots changed in the state store") },
                        tagsChanged: { repository in
                            if let repository {
                                proxy.localEndpoints.tagDigests.invalidate(repository)
                                proxy.signatureCaches.forgetTags(of: repository)
                            } else {
                                proxy.localEndpoints.tagDigests.invalidateAll()
                                proxy.signatureCaches.forgetAllTags()
                            }
                        })
                }))
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: services + [
                .init(service: BackgroundService {
                    await readiness.run(state: holder, client: client, logger: logger, health: proxy.health, metrics: observability.metrics)
                }),
                .init(service: BackgroundService {
                    await reloader.run()
                }),
                .init(service: BackgroundService { await MemoryReturner(connections: connections).run() }),
            ] + sharedServices,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        groupConfiguration.maximumGracefulShutdownDuration = Duration.seconds(configuration.shutdownGracePeriod)
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            try? await client.shutdown()
            throw error
        }
        try? await client.shutdown()
    }
}
