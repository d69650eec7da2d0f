import Yams

extension GatewayConfiguration {
    /// The registry browser under `/ui/` (`ui:`).
    package struct UI: Sendable {
        /// Off unless `ui.enabled: true`.
        package var enabled = false
        /// Seconds a login session lasts (`ui.session_lifetime`, default 8 h).
        package var sessionLifetime = 8 * 3600
    }
}

extension ConfigurationLoader.Reader {
    /// `ui` (optional): the registry browser, off by default.
    mutating func readUI(_ node: Node?) -> GatewayConfiguration.UI {
        var ui = GatewayConfiguration.UI()
        if let section = mapping(node, "ui", allowed: ["enabled", "session_lifetime"]) {
            if let flag = section["enabled"] {
                if let value = flag.bool { ui.enabled = value } else { problem("ui.enabled", "must be true or false") }
            }
            ui.sessionLifetime = integer(section["session_lifetime"], "ui.session_lifetime", range: 60...(30 * 86_400)) ?? 8 * 3600
        }
        return ui
    }
}
