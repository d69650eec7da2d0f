import Policy
import Yams

extension GatewayConfiguration {
    /// The token server Portcullis runs for its clients.
    package struct Token: Sendable {
        package var service: String
        package var issuer: String
        /// PEM private key path.
        package var key: String
        /// PEM certificate chain path, leaf first.
        package var certificate: String?
        /// Client token lifetime in seconds.
        package var lifetime: Int = 300
        /// The realm announced in challenges; defaults to `<public_url>/token`.
        package var realm: String?
        /// Refresh token lifetime in seconds.
        package var refreshLifetime: Int = 30 * 86_400
        /// The key that will replace ``key``: trusted already, announced by `registry-config`
        /// and `/jwks`, never signed with.
        package var nextKey: String?
        /// The certificate of ``nextKey``.
        package var nextCertificate: String?
        /// Where the public keys are served as a JWKS document.
        package var jwksPath = "/jwks"
        /// How much a token grants on the requested repositories (`token.grant`).
        package var grant: TokenGrantMode = .requested
    }
}

extension ConfigurationLoader.Reader {
    /// `token` (required): the token server Portcullis runs for its clients; `nil` when the
    /// section is missing, not a mapping, or lacks `service`, `issuer` or `key`.
    /// - Parameter upstreams: the upstreams already read; with `key_hint: x5c` and no key of
    ///   their own they sign with `token.key`, so `token.certificate` becomes required.
    mutating func readToken(_ node: Node?, upstreams: [GatewayConfiguration.Upstream]) -> GatewayConfiguration.Token? {
        if node == nil { problem("token", "is required") }
        guard
            let section = mapping(
                node, "token",
                allowed: [
                    "service", "issuer", "key", "certificate", "lifetime", "refresh_lifetime", "realm", "next_key", "next_certificate", "jwks_path",
                    "grant",
                ])
        else { return nil }
        let service = string(section["service"], "token.service", required: true)
        let issuer = string(section["issuer"], "token.issuer", required: true)
        let key = self.path(section["key"], "token.key", required: true)
        let certificate = self.path(section["certificate"], "token.certificate")
        let lifetime = integer(section["lifetime"], "token.lifetime", range: 30...86_400) ?? 300
        let realm = string(section["realm"], "token.realm")
        let refreshLifetime = integer(section["refresh_lifetime"], "token.refresh_lifetime", range: 60...(365 * 86_400)) ?? 30 * 86_400
        let nextKey = self.path(section["next_key"], "token.next_key")
        let nextCertificate = self.path(section["next_certificate"], "token.next_certificate")
        if (nextKey == nil) != (nextCertificate == nil) && (section["next_key"] != nil) != (section["next_certificate"] != nil) {
            problem("token.next_key", "next_key and next_certificate go together")
        }
        let jwksPath = string(section["jwks_path"], "token.jwks_path") ?? "/jwks"
        let reserved = ["/token", "/healthz", "/readyz", "/metrics"]
        if !jwksPath.hasPrefix("/") || jwksPath.contains("?") || jwksPath.contains("#") || reserved.contains(jwksPath)
            || jwksPath == "/v2" || jwksPath.hasPrefix("/v2/")
        {
            problem("token.jwks_path", "must be a path starting with / outside /v2/ and other than \(reserved.joined(separator: ", ")) (got \"\(jwksPath)\")")
        }
        if let realm, Self.parseURL(realm, allowPath: true) == nil {
            problem("token.realm", "must be an http:// or https:// URL (got \"\(realm)\")")
        }
        if upstreams.contains(where: { $0.keyHint == "x5c" && $0.key == nil }) && certificate == nil && section["certificate"] == nil {
            problem("token.certificate", "is required with upstream.key_hint: x5c (the x5c chain is built from it)")
        }
        var grant = TokenGrantMode.requested
        if let text = string(section["grant"], "token.grant") {
            if let mode = TokenGrantMode(rawValue: text) {
                grant = mode
            } else {
                problem("token.grant", "must be requested or repository (got \"\(text)\")")
            }
        }
        guard let service, let issuer, let key else { return nil }
        return GatewayConfiguration.Token(
            service: service, issuer: issuer, key: key, certificate: certificate, lifetime: lifetime, realm: realm,
            refreshLifetime: refreshLifetime, nextKey: nextKey, nextCertificate: nextCertificate, jwksPath: jwksPath, grant: grant)
    }
}
