/// What a `/v2/` request needs before it may reach the registry.
public enum RequiredAccess: Hashable, Sendable {
    /// Any valid identity, anonymous included, may pass (`/v2/`). The upstream token carries no access.
    case authenticated
    /// Every listed scope must be granted in full.
    case scopes([Scope])
    /// The request must not reach the registry at all; the string says why.
    case rejected(RouteRejection)
}

/// Why a request path is refused before any authorization.
public struct RouteRejection: Hashable, Sendable, CustomStringConvertible {
    /// How to answer: the registry's own answer to such a request is a 404 or 405.
    public enum Kind: Hashable, Sendable {
        /// The path names no route (or an invalid name): 404 `NAME_INVALID`/`NOT_FOUND`.
        case notFound
        /// The route exists but not for this method: 405 `UNSUPPORTED`.
        case methodNotAllowed
        /// The path is ambiguous or would be rewritten by the registry: 400 `NAME_INVALID`.
        case badRequest
    }

    /// How to answer.
    public var kind: Kind
    /// The reason, for the log and the error body.
    public var reason: String

    /// Creates a rejection.
    public init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    public var description: String { reason }
}
