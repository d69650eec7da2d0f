import Foundation
import Logging

/// The audit record of one manifest deletion by `portcullis prune`, written as one JSON line.
struct PruneAuditRecord: Encodable, Sendable {
    /// Always `prune.delete`.
    var event = "prune.delete"
    /// When the registry accepted the deletion (RFC 3339, UTC).
    var time: String
    /// The robot the deletion was authorized as (the registry token's `sub`).
    var robot: String
    /// The registry it was sent to.
    var registry: String
    /// The repository.
    var repository: String
    /// The deleted manifest.
    var digest: String
    /// The tags that went with it.
    var tags: [String]
    /// The image's creation time (RFC 3339), if known.
    var created: String?
    /// For an image without a creation time, when it was pushed through Portcullis (RFC 3339,
    /// from `retention.push_times`), if recorded.
    var pushed: String?
    /// The criteria of the run, as given on the command line.
    var criteria: String

    /// The record as audit-stream fields.
    var auditMetadata: Logger.Metadata {
        var metadata: Logger.Metadata = [
            "event": "\(event)", "time": "\(time)", "robot": "\(robot)", "registry": "\(registry)", "repository": "\(repository)",
            "digest": "\(digest)", "tags": "\(tags.joined(separator: ","))", "criteria": "\(criteria)",
        ]
        if let created { metadata["created"] = "\(created)" }
        if let pushed { metadata["pushed"] = "\(pushed)" }
        return metadata
    }

    /// The record as one line of JSON with sorted keys.
    var jsonLine: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? #"{"event":"prune.delete","error":"unencodable"}"#
    }
}
