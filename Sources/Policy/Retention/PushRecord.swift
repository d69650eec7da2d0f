import Foundation

/// One manifest push that Portcullis forwarded and the registry accepted: the line
/// `retention.push_times` gets, and the push time `portcullis prune` falls back to for an image
/// whose config has no creation time (registry 2.8 keeps no push time its API shows).
///
/// A line is a JSON object `{"digest","reference","repository","time"}` with `time` in RFC 3339.
public struct PushRecord: Sendable, Equatable, Codable {
    /// The repository.
    public var repository: String
    /// The `algorithm:encoded` digest of the pushed manifest.
    public var digest: String
    /// The tag or digest the manifest was pushed under.
    public var reference: String
    /// When the registry accepted it, RFC 3339 in UTC.
    public var time: String

    /// Creates a record.
    public init(repository: String, digest: String, reference: String, time: String) {
        self.repository = repository
        self.digest = digest
        self.reference = reference
        self.time = time
    }

    /// The record as one line of JSON with sorted keys, without the newline.
    public var jsonLine: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Four strings always encode.
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// The latest push time of every manifest in `text` (lines as ``jsonLine`` writes them), in
    /// seconds since 1970, by repository and then digest. Lines that do not parse (a line cut by a
    /// crash, for one) are skipped.
    public static func latestPushTimes(in text: String) -> [String: [String: Double]] {
        let decoder = JSONDecoder()
        var result: [String: [String: Double]] = [:]
        for line in text.split(separator: "\n") {
            guard let record = try? decoder.decode(PushRecord.self, from: Data(line.utf8)),
                let time = RFC3339Timestamp.parse(record.time)
            else { continue }
            result[record.repository, default: [:]][record.digest] = max(time, result[record.repository]?[record.digest] ?? time)
        }
        return result
    }
}
