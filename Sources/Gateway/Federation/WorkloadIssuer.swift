import Policy

/// One configured OIDC issuer (`users.oidc[]`) as requests use it: the verification policy,
/// where its keys come from, and the Basic user name its logins must use.
struct WorkloadIssuer: Sendable {
    /// Where the issuer's keys come from.
    enum KeySource: Sendable, Equatable {
        /// Read from a JWKS file when the configuration was loaded.
        case fixed
        /// Fetched from this URL.
        case url(String)
        /// Fetched from the `jwks_uri` of `<issuer>/.well-known/openid-configuration`.
        case discovery
    }

    var policy: OIDCIssuer
    var source: KeySource
    /// The keys of a ``KeySource/fixed`` source.
    var fixedKeys: [TrustedKey]
    var username: String?
}
