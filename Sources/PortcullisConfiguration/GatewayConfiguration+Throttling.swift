import Yams

extension GatewayConfiguration {
    /// Brute-force throttling of failed authentications.
    package struct Throttling: Sendable {
        /// Failures per account within ``window`` before the account is refused.
        package var maxFailures: Int = 5
        /// Failures per client address within ``window`` before the address is refused.
        package var maxFailuresPerAddress: Int = 50
        /// Seconds over which failures are counted.
        package var window: Int = 60
        /// Seconds a throttled account or address is refused.
        package var cooldown: Int = 300
    }
}

extension ConfigurationLoader.Reader {
    /// `throttling` (optional): each limit that is missing or invalid keeps its default.
    mutating func readThrottling(_ node: Node?) -> GatewayConfiguration.Throttling {
        var throttling = GatewayConfiguration.Throttling()
        if let section = mapping(
            node, "throttling", allowed: ["max_failures", "max_failures_per_address", "window", "cooldown"])
        {
            throttling.maxFailures = integer(section["max_failures"], "throttling.max_failures", range: 1...10_000) ?? throttling.maxFailures
            throttling.maxFailuresPerAddress =
                integer(section["max_failures_per_address"], "throttling.max_failures_per_address", range: 1...1_000_000)
                ?? throttling.maxFailuresPerAddress
            throttling.window = integer(section["window"], "throttling.window", range: 1...86_400) ?? throttling.window
            throttling.cooldown = integer(section["cooldown"], "throttling.cooldown", range: 1...86_400) ?? throttling.cooldown
        }
        return throttling
    }
}
