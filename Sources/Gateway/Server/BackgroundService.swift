import ServiceLifecycle

/// A background loop that stops when the group shuts down gracefully.
struct BackgroundService: Service {
    let body: @Sendable () async -> Void

    init(_ body: @escaping @Sendable () async -> Void) {
        self.body = body
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown { await body() }
    }
}
