import Policy

/// Everything `portcullis serve` is configured with, as read from the YAML file.
///
/// File paths are already resolved against the directory of the configuration file.
package struct GatewayConfiguration: Sendable {
    /// A `host:port` to listen on.
    package struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
        package var host: String
        package var port: Int
        package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// The public URL clients use: realm and forwarded headers derive from it.
    package struct PublicURL: Sendable, Equatable, CustomStringConvertible {
        package var scheme: String
        /// Host with port when one was given, as it goes into `X-Forwarded-Host`.
        package var authority: String
        package var description: String { "\(scheme)://\(authority)" }
    }

    /// How Portcullis reaches and signs for the registry.
    package struct Upstream: Sendable {
        /// The registry's base URL, e.g. `http://127.0.0.1:5001`.
        package var url: String
        /// The pinned registry version.
        package var registryVersion: RegistryVersion = .v2_8
        /// The configured key hint word: `x5c`, `kid` or `jwks`.
        package var keyHint: String = "x5c"
        /// The `kid` for `key_hint: jwks`; defaults to the key's RFC 7638 thumbprint.
        package var jwksKid: String?
        /// The registry's `auth.token.service`.
        package var service: String
        /// The registry's `auth.token.issuer`.
        package var issuer: String
        /// Lifetime of upstream tokens in seconds.
        package var tokenLifetime: Int = 300
        /// The upstream's name in metrics, logs and commands (`default` for a single `upstream:`).
        package var name = "default"
        /// Whether it serves every repository the others do not claim, and the catalog.
        package var isPrimary = false
        /// Percent of repositories routed here by a stable hash of their name (`weight`).
        package var weight = 0
        /// Repository patterns routed here (`repositories`).
        package var repositories: [String] = []
        /// Consecutive failed answers (5xx, or 401 to Portcullis's token) after which a
        /// non-primary upstream leaves the rotation (`fallback_after`).
        package var fallbackAfter = 5
        /// This upstream's own signing key (PEM private key path); `token.key` when absent.
        package var key: String?
        /// The certificate chain of ``key`` (needed for `key_hint: x5c` and a rootcertbundle).
        package var certificate: String?
    }

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

    /// Brute-force throttling of failed authentications.
    package struct Throttling: Sendable {
        /// Failures per account within ``window`` before the account is refused.
        package var maxFailures: Int = 5
        /// Failures per client address within ``window`` before the address is refused.
        package var maxFailuresPerAddress: Int = 50
        /// Seconds over which failures are counted.
        package var window: Int = 60
        /// Seconds a throttled account or address is refused.
        package var cooldown: Int = 300
    }

    /// An external token issuer whose tokens clients may present (migration shim).
    package struct ExternalIssuer: Sendable {
        /// The `iss` value.
        package var issuer: String
        /// The `aud` values accepted.
        package var audiences: [String]
        /// PEM certificate files: trusted as keys and as `x5c` chain anchors.
        package var certificates: [String] = []
        /// PEM public key files.
        package var publicKeys: [String] = []
        /// A JWKS file; each key is trusted under its `kid`.
        package var jwks: String?
        /// Take the token's `access` claim as is instead of intersecting it with the rules.
        package var trustAccessClaim = false
    }

    /// The registry browser under `/ui/` (`ui:`).
    package struct UI: Sendable {
        /// Off unless `ui.enabled: true`.
        package var enabled = false
        /// Seconds a login session lasts (`ui.session_lifetime`, default 8 h).
        package var sessionLifetime = 8 * 3600
    }

    /// TLS termination: certificate chain and key files.
    package struct TLS: Sendable {
        package var certificate: String
        package var key: String
    }

    package var listen: ListenAddress
    /// A second, plain HTTP/1.1 listener serving only `/healthz`, `/readyz` and `/metrics`.
    package var adminListen: ListenAddress?
    package var publicURL: PublicURL
    /// TLS on the listener (HTTP/2 and HTTP/1.1 by ALPN); plain HTTP/1.1 without it.
    package var tls: TLS?
    /// Whether every connection starts with a PROXY protocol (v1 or v2) header.
    package var proxyProtocol = false
    /// Whether a plain listener also takes HTTP/2 with prior knowledge (h2c).
    package var h2c = false
    /// Peers whose `X-Forwarded-For` names the client (CIDR ranges).
    package var trustedProxies: [String] = []
    /// The primary upstream (the only one with a single `upstream:`).
    package var upstream: Upstream
    /// Every upstream in configuration order, the primary included.
    package var upstreams: [Upstream] = []
    package var token: Token
    /// Path of the htpasswd file, if users log in with passwords.
    package var htpasswd: String?
    /// Path of the robots file (it may not exist yet).
    package var robots: String?
    /// An LDAP directory for accounts that are neither robots nor htpasswd users.
    package var ldap: LDAPConfiguration?
    /// OIDC issuers whose identity tokens are accepted as passwords and in token exchanges.
    package var oidc: [OIDCConfiguration] = []
    /// The registry browser.
    package var ui = UI()
    /// Brute-force throttling.
    package var throttling = Throttling()
    /// External issuers.
    package var issuers: [ExternalIssuer] = []
    /// Seconds between readiness checks against the registry.
    package var readinessInterval: Int = 10
    /// Seconds in-flight requests may take to finish after SIGTERM.
    package var shutdownGracePeriod: Int = 30
    /// Seconds a connection may take to send a complete request head (idle and slowloris bound).
    package var requestHeadTimeout: Int = 60
    /// Seconds a client may take nothing of a response Portcullis has more of to send.
    package var responseStallTimeout: Int = 60
    /// Seconds the registry may take to send anything once it has the whole request (its
    /// response head, or the next bytes of its body).
    package var upstreamResponseTimeout: Int = 300
    /// The rule list in order.
    package var rules: [Rule]
    /// The rule list as written, for explanations.
    package var ruleSources: [String]
    /// What the repositories may hold (`content:`), first match by repository.
    package var content: [ContentRule] = []
    /// swift-log level name.
    package var logLevel: String = "info"
    /// Log line format: `logfmt` or `json`.
    package var logFormat: String = "logfmt"
    /// Audit destination: `stdout`, `stderr`, `off`, or a file path.
    package var auditDestination: String = "stdout"
    /// Where Portcullis records each manifest push it forwarded (`retention.push_times`), the
    /// push time `portcullis prune` falls back to; `nil`: not recorded.
    package var pushTimesPath: String?
    /// The file the configuration was read from.
    package var sourcePath: String

    /// The realm clients fetch tokens from.
    package var realm: String { token.realm ?? "\(publicURL)/token" }
}
