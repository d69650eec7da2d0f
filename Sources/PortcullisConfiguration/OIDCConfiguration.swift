import Policy

/// One entry of `users.oidc`: an OpenID Connect issuer whose identity tokens log in CI jobs.
package struct OIDCConfiguration: Sendable {
    /// Where the issuer's signing keys come from.
    package enum Keys: Sendable, Equatable {
        /// `jwks`: a local JWKS file (offline clusters).
        case file(String)
        /// `jwks_url`: fetched, cached, fetched again for an unknown `kid` (rate-limited).
        case url(String)
        /// `discovery: true`: `jwks_uri` from `<issuer>/.well-known/openid-configuration`.
        case discovery
    }

    package var issuer: String
    package var audiences: [String]
    package var keys: Keys
    /// `account`, e.g. `ci:${claims:project_path}` (default `${claims:sub}`).
    package var account: ClaimTemplate
    /// `labels`: label name → claim template.
    package var labels: [String: ClaimTemplate]
    /// `require`: claim → the only value accepted.
    package var require: [String: String]
    /// `username`: the Basic user name such logins must use; any when absent.
    package var username: String?
    /// `leeway`: clock slack in seconds.
    package var leeway: Int
}
