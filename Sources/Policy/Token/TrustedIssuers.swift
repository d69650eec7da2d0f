import Foundation

/// Every issuer whose tokens Portcullis accepts from clients: its own, and external ones
/// (Keycloak, GitLab, docker_auth, …) during a registry 2-to-3 migration.
public struct TrustedIssuers: Sendable {
    /// One trusted issuer.
    public struct Issuer: Sendable {
        /// Verifies the issuer's tokens.
        public var verifier: TokenVerifier
        /// Whether the token's `access` claim is taken as is; otherwise it is intersected with
        /// Portcullis's own rules for the token's subject.
        public var trustAccessClaim: Bool
        /// Whether this is Portcullis's own token server.
        public var isPortcullis: Bool

        /// Creates an issuer entry.
        public init(verifier: TokenVerifier, trustAccessClaim: Bool, isPortcullis: Bool = false) {
            self.verifier = verifier
            self.trustAccessClaim = trustAccessClaim
            self.isPortcullis = isPortcullis
        }
    }

    /// Issuers by `iss`.
    public var issuers: [String: Issuer]

    /// Creates the set; a later entry for the same `iss` replaces an earlier one.
    public init(_ issuers: [Issuer]) {
        self.issuers = Dictionary(issuers.map { ($0.verifier.issuer, $0) }, uniquingKeysWith: { _, last in last })
    }

    /// Verifies `token` with the verifier of the issuer it names.
    /// - Returns: the claims and the issuer that vouched for them.
    /// - Throws: ``PolicyError/Code/invalidToken`` with the reason (including an unknown issuer).
    public func verify(_ token: String, now: Date) async throws -> (TokenClaims, Issuer) {
        let unverified = try UnverifiedToken(token)
        guard let iss = unverified.issuer else {
            throw PolicyError(.invalidToken, "token has no iss claim")
        }
        guard let issuer = issuers[iss] else {
            throw PolicyError(.invalidToken, "issuer \"\(iss)\" is not trusted")
        }
        return (try await issuer.verifier.verify(unverified, now: now), issuer)
    }
}
