import Foundation
import JWTKit

/// The claims of a Docker registry token.
///
/// `aud` is encoded as a single JSON string when it holds one value, which registry 2.8
/// requires; times are whole seconds.
public struct TokenClaims: JWTPayload, Equatable {
    /// Who issued the token; must equal the registry's `auth.token.issuer`.
    public var iss: IssuerClaim
    /// The account the token was issued to.
    public var sub: SubjectClaim
    /// The service the token is for; must equal the registry's `auth.token.service`.
    public var aud: AudienceClaim
    /// Expiry.
    public var exp: ExpirationClaim
    /// Not valid before.
    public var nbf: NotBeforeClaim?
    /// Issued at.
    public var iat: IssuedAtClaim?
    /// Unique token id.
    public var jti: IDClaim?
    /// The granted access.
    public var access: [AccessEntry]

    /// One entry of the `access` claim.
    public struct AccessEntry: Codable, Sendable, Equatable {
        /// Resource type.
        public var type: String
        /// Resource name.
        public var name: String
        /// Granted actions.
        public var actions: [String]

        /// Creates an entry.
        public init(type: String, name: String, actions: [String]) {
            self.type = type
            self.name = name
            self.actions = actions
        }

        /// The entry as a scope; unknown action words are ignored.
        public var scope: Scope {
            var set: ActionSet = []
            for word in actions { if let action = try? ActionSet(action: word) { set.formUnion(action) } }
            return Scope(resource: Resource(type: type, name: name), actions: set)
        }
    }

    /// Creates claims for `scopes`, valid from `now` for `lifetime` seconds (times truncated to whole seconds).
    public init(issuer: String, subject: String, audience: String, scopes: [Scope], now: Date, lifetime: Int, id: String) {
        let issued = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        self.iss = IssuerClaim(value: issuer)
        self.sub = SubjectClaim(value: subject)
        self.aud = AudienceClaim(value: audience)
        self.exp = ExpirationClaim(value: issued.addingTimeInterval(Double(lifetime)))
        self.nbf = NotBeforeClaim(value: issued)
        self.iat = IssuedAtClaim(value: issued)
        self.jti = IDClaim(value: id)
        self.access = scopes.map { AccessEntry(type: $0.resource.type, name: $0.resource.name, actions: $0.actions.words) }
    }

    /// The granted access as scopes.
    public var scopes: [Scope] { access.map(\.scope) }

    /// Claims are checked by ``TokenVerifier`` against an explicit time, not here.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}
