import Yams

/// The two one-key sections about the gateway's life: `readiness` and `shutdown`.
extension ConfigurationLoader.Reader {
    /// `readiness.interval`: seconds between readiness checks against the registry (default 10).
    mutating func readReadiness(_ node: Node?) -> Int {
        var readinessInterval = 10
        if let section = mapping(node, "readiness", allowed: ["interval"]) {
            readinessInterval = integer(section["interval"], "readiness.interval", range: 1...3600) ?? 10
        }
        return readinessInterval
    }

    /// `shutdown.grace_period`: seconds requests in flight may take after SIGTERM (default 30).
    mutating func readShutdown(_ node: Node?) -> Int {
        var shutdownGracePeriod = 30
        if let section = mapping(node, "shutdown", allowed: ["grace_period"]) {
            shutdownGracePeriod = integer(section["grace_period"], "shutdown.grace_period", range: 0...86_400) ?? 30
        }
        return shutdownGracePeriod
    }
}
