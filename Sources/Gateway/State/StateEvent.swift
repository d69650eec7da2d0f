import Foundation

/// What one replica tells the others through PostgreSQL's `NOTIFY portcullis_state`.
///
/// Notifications are not stored: a replica that was not listening missed them, so on every
/// (re)connection of its listener it re-reads robots and locks and drops its tag caches.
enum StateEvent: Sendable, Equatable {
    /// The robots changed (`robot create` or `revoke`): read them again.
    case robots
    /// A manifest of `repository` was pushed or deleted: drop its cached tags.
    case tags(repository: String)
    /// An account or address reached its failure limit: refuse it until `until` (seconds since 1970).
    case throttled(kind: ThrottleKind, key: String, until: Double)

    /// What a throttle counts.
    enum ThrottleKind: String, Sendable, Codable {
        case account
        case address
    }

    /// The channel every replica listens on.
    static let channel = "portcullis_state"

    private struct Wire: Codable {
        var event: String
        var repository: String?
        var kind: ThrottleKind?
        var key: String?
        var until: Double?
    }

    /// The notification's payload (JSON; PostgreSQL takes up to 8,000 bytes, names are far shorter).
    var payload: String {
        let wire: Wire = switch self {
        case .robots: Wire(event: "robots")
        case .tags(let repository): Wire(event: "tags", repository: repository)
        case .throttled(let kind, let key, let until): Wire(event: "throttled", kind: kind, key: key, until: until)
        }
        return String(decoding: (try? JSONEncoder().encode(wire)) ?? Data(), as: UTF8.self)
    }

    /// Reads a payload; `nil` for one this version does not know.
    init?(payload: String) {
        guard let wire = try? JSONDecoder().decode(Wire.self, from: Data(payload.utf8)) else { return nil }
        switch wire.event {
        case "robots": self = .robots
        case "tags":
            guard let repository = wire.repository else { return nil }
            self = .tags(repository: repository)
        case "throttled":
            guard let kind = wire.kind, let key = wire.key, let until = wire.until else { return nil }
            self = .throttled(kind: kind, key: key, until: until)
        default: return nil
        }
    }
}
