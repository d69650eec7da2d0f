import Yams

extension ConfigurationLoader.Reader {
    /// The `timeouts` section as read, in seconds; each one missing or invalid keeps its default.
    struct Timeouts {
        /// `request_head`: a complete request head (idle and slowloris bound).
        var requestHead = 60
        /// `response_stall`: a client taking nothing of a response.
        var responseStall = 60
        /// `upstream_response`: the registry sending nothing once it has the whole request.
        var upstreamResponse = 300
    }

    /// `timeouts` (optional): `request_head`, `response_stall` and `upstream_response`.
    mutating func readTimeouts(_ node: Node?) -> Timeouts {
        var timeouts = Timeouts()
        if let section = mapping(node, "timeouts", allowed: ["request_head", "response_stall", "upstream_response"]) {
            timeouts.requestHead = integer(section["request_head"], "timeouts.request_head", range: 1...3600) ?? 60
            timeouts.responseStall = integer(section["response_stall"], "timeouts.response_stall", range: 1...3600) ?? 60
            timeouts.upstreamResponse = integer(section["upstream_response"], "timeouts.upstream_response", range: 1...3600) ?? 300
        }
        return timeouts
    }
}
