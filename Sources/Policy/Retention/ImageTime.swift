/// How old an image is, as `portcullis prune` and the registry browser judge it: the creation time
/// its config or annotation gives, unless that is missing or a reproducible build's placeholder,
/// and then the push time Portcullis recorded (`retention.push_times`).
///
/// Reproducible builds (ko, Bazel, Nix, `SOURCE_DATE_EPOCH=0`) write `1970-01-01T00:00:00Z` or
/// `0001-01-01T00:00:00Z`: any creation time at or before the epoch counts as no creation time.
public struct ImageTime: Sendable, Equatable, CustomStringConvertible {
    /// Where the time comes from.
    public enum Source: Sendable, Equatable {
        /// The image's own creation time.
        case created
        /// The push Portcullis recorded.
        case pushed
    }

    /// Seconds since 1970.
    public var seconds: Double
    /// Where ``seconds`` comes from.
    public var source: Source

    /// The time of an image with creation time `created` and recorded push time `pushed` (seconds
    /// since 1970); `nil` when neither is usable.
    public init?(created: Double?, pushed: Double?) {
        if let created, created > 0 {
            self.seconds = created
            self.source = .created
        } else if let pushed, pushed > 0 {
            self.seconds = pushed
            self.source = .pushed
        } else {
            return nil
        }
    }

    /// `created 2024-05-01T12:00:00Z` or `pushed 2026-12-03T10:00:00Z`.
    public var description: String {
        "\(source == .created ? "created" : "pushed") \(RFC3339Timestamp.format(seconds))"
    }

    /// ``description`` of `time`, or `time unknown`.
    public static func describe(_ time: ImageTime?) -> String {
        time?.description ?? "time unknown"
    }
}
