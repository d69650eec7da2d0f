import PostgresNIO

/// Why the shared state store could not be used; each message names what to do.
enum StateStoreError: Error, CustomStringConvertible, Equatable {
    /// The database did not answer, refused the connection, or failed a statement.
    case unavailable(String)
    /// `state.password_file` or `state.ca` could not be read.
    case setup(String)
    /// The database holds an older schema than this Portcullis needs.
    case schemaTooOld(found: Int, needed: Int)
    /// The database holds a schema a newer Portcullis made.
    case schemaTooNew(found: Int, known: Int)
    /// A robot of that name exists already.
    case robotExists(String)

    var description: String {
        switch self {
        case .unavailable(let reason): "the state store is unavailable: \(reason)"
        case .setup(let reason): reason
        case .schemaTooOld(let found, let needed):
            "the database holds schema version \(found), this Portcullis needs \(needed): run `portcullis state migrate`"
        case .schemaTooNew(let found, let known):
            "the database holds schema version \(found), made by a newer Portcullis (this one knows up to \(known)): upgrade Portcullis, never migrate down"
        case .robotExists(let name): "robot \"\(name)\" already exists; revoke it first"
        }
    }

    /// `error` (from postgres-nio, NIO or a deadline) as an ``unavailable(_:)`` whose reason names
    /// the server's own message where there is one; PSQLError's own description hides it.
    static func wrapping(_ error: any Error) -> StateStoreError {
        if let error = error as? StateStoreError { return error }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                let code = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                return .unavailable("the server said: \(message)\(code)")
            }
            if let underlying = error.underlying { return .unavailable("\(error.code): \(underlying)") }
            return .unavailable("\(error.code)")
        }
        return .unavailable("\(error)")
    }
}
