import ServiceLifecycle

/// The HTTP listener as a service of the group: it drains on graceful shutdown and then returns.
struct ServerService: Service {
    let server: HTTPServer
    let onListening: @Sendable (Int) -> Void

    func run() async throws {
        try await server.run(onListening: onListening)
    }
}
