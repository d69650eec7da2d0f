import Foundation
import Yams

extension GatewayConfiguration {
    /// Where the state replicas share lives (`state:`): robots, the push ledger, throttling
    /// counters, tag-push serialization and cache invalidation.
    package enum StateStore: Sendable, Equatable {
        /// One replica: robots in `users.robots`, pushes in `retention.push_times`, counters in memory.
        case embedded
        /// Shared by every replica through one PostgreSQL database.
        case postgres(Postgres)
    }

    /// `state.postgres`: how to reach the database.
    package struct Postgres: Sendable, Equatable {
        /// Host of `url`.
        package var host: String
        /// Port of `url` (5432 when it names none).
        package var port: Int
        /// Database of `url` (the user's name when it names none).
        package var database: String
        /// User of `url`.
        package var username: String
        /// The file holding the password (first line), if any.
        package var passwordFile: String?
        /// A PEM bundle of the CAs to verify the server's certificate with; set, the connection
        /// requires TLS with the host name checked.
        package var ca: String?
        /// The most connections one replica opens.
        package var pool: Int = 4
        /// `url` as written, without a password, for messages.
        package var displayURL: String { "postgres://\(username)@\(host):\(port)/\(database)" }
    }
}

extension ConfigurationLoader.Reader {
    /// `state` (optional): `store: embedded` (the default) or `store: postgres` with `url`,
    /// `password_file`, `ca` and `pool`.
    mutating func readState(_ node: Node?) -> GatewayConfiguration.StateStore {
        guard let section = mapping(node, "state", allowed: ["store", "url", "password_file", "ca", "pool"]) else { return .embedded }
        let store = string(section["store"], "state.store") ?? "embedded"
        switch store {
        case "embedded":
            for key in ["url", "password_file", "ca", "pool"] where section[key] != nil {
                problem("state.\(key)", "only for store: postgres")
            }
            return .embedded
        case "postgres":
            guard let text = string(section["url"], "state.url", required: true) else { return .embedded }
            guard var postgres = postgresURL(text) else { return .embedded }
            postgres.passwordFile = section["password_file"].flatMap { path($0, "state.password_file") }
            postgres.ca = section["ca"].flatMap { path($0, "state.ca") }
            postgres.pool = integer(section["pool"], "state.pool", range: 2...100) ?? postgres.pool
            return .postgres(postgres)
        default:
            problem("state.store", "must be embedded or postgres (got \"\(store)\")")
            return .embedded
        }
    }

    /// `postgres://user@host[:port]/database`; a password in the URL is refused (it belongs in
    /// `password_file`, out of the configuration).
    private mutating func postgresURL(_ text: String) -> GatewayConfiguration.Postgres? {
        guard let components = URLComponents(string: text), ["postgres", "postgresql"].contains(components.scheme ?? ""),
            let host = components.host, !host.isEmpty
        else {
            problem("state.url", "must be postgres://USER@HOST[:PORT]/DATABASE (got \"\(text)\")")
            return nil
        }
        if components.password != nil {
            problem("state.url", "must not hold a password: put it in state.password_file")
            return nil
        }
        guard let user = components.user, !user.isEmpty else {
            problem("state.url", "names no user: postgres://USER@HOST[:PORT]/DATABASE")
            return nil
        }
        if let query = components.query, !query.isEmpty {
            problem("state.url", "takes no parameters (TLS is state.ca)")
            return nil
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        return GatewayConfiguration.Postgres(
            host: host, port: components.port ?? 5432, database: database.isEmpty ? user : database, username: user)
    }

    /// With the postgres store, robots and push times live in the database: the files that hold
    /// them for one replica are refused, with the command that imports them.
    mutating func checkState(_ state: GatewayConfiguration.StateStore, robots: String?, pushTimes: String?) {
        guard case .postgres = state else { return }
        if robots != nil {
            problem("users.robots", "robots live in the database with state.store postgres: import the file once with `portcullis state import --robots FILE`, then remove this key")
        }
        if pushTimes != nil {
            problem(
                "retention.push_times",
                "pushes are recorded in the database with state.store postgres: import the file once with `portcullis state import --push-times FILE`, then remove this key")
        }
    }
}
