import Logging

/// The fields of the one log line a proxied request produces.
struct RequestLog {
    var id: String
    var method: String
    var path: String
    var account: String?
    /// The repository (or other resource) and the action the request needed.
    var resource: String?
    var action: String?
    var issuer: String?
    /// The upstream's name, when there are several.
    var upstream: String?
    var outcome: String?
    var status: Int?
    var upstreamStatus: Int?
    var bytes: Int?
    var durationNanoseconds: Int64?

    var metadata: Logger.Metadata {
        var metadata: Logger.Metadata = ["request": "\(id)", "method": "\(method)", "path": "\(path)"]
        if let account { metadata["account"] = "\(account)" }
        if let resource { metadata["repository"] = "\(resource)" }
        if let action { metadata["action"] = "\(action)" }
        if let issuer { metadata["issuer"] = "\(issuer)" }
        if let upstream { metadata["upstream"] = "\(upstream)" }
        if let outcome { metadata["outcome"] = "\(outcome)" }
        if let status { metadata["status"] = "\(status)" }
        if let upstreamStatus { metadata["upstream_status"] = "\(upstreamStatus)" }
        if let bytes { metadata["bytes"] = "\(bytes)" }
        if let durationNanoseconds { metadata["duration_ms"] = "\(durationNanoseconds / 1_000_000)" }
        return metadata
    }
}
