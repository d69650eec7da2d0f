/// A `WWW-Authenticate: Bearer …` challenge, as the registry sends it.
///
/// Rendering is deterministic: scopes are sorted by resource and their actions printed in
/// canonical order, and the realm always comes from configuration, never from the request.
public struct Challenge: Sendable, Equatable {
    /// Why a token was not good enough, when one was presented.
    public enum Failure: String, Sendable {
        /// The token could not be verified or has expired.
        case invalidToken = "invalid_token"
        /// The token was valid but lacked the required access.
        case insufficientScope = "insufficient_scope"
    }

    /// The token endpoint URL.
    public var realm: String
    /// The service name clients must ask the token endpoint for.
    public var service: String
    /// The scopes the request needs.
    public var scopes: [Scope]
    /// Why a presented token was refused.
    public var failure: Failure?

    /// Creates a challenge.
    public init(realm: String, service: String, scopes: [Scope] = [], failure: Failure? = nil) {
        self.realm = realm
        self.service = service
        self.scopes = scopes
        self.failure = failure
    }

    /// The `WWW-Authenticate` header value.
    public var headerValue: String {
        var value = "Bearer realm=\(Self.quote(realm)),service=\(Self.quote(service))"
        if !scopes.isEmpty {
            let sorted = scopes.sorted { ($0.resource.type, $0.resource.name) < ($1.resource.type, $1.resource.name) }
            value += ",scope=" + Self.quote(sorted.map(\.description).joined(separator: " "))
        }
        if let failure {
            value += ",error=\(Self.quote(failure.rawValue))"
        }
        return value
    }

    private static func quote(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
