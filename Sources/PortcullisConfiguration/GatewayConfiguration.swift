import Policy

/// Everything `portcullis serve` is configured with, as read from the YAML file.
///
/// File paths are already resolved against the directory of the configuration file.
package struct GatewayConfiguration: Sendable {
    // The section types (ListenAddress, PublicURL, TLS, Upstream, Token, Throttling, ExternalIssuer, UI)
    // sit beside their readers, in GatewayConfiguration+<Section>.swift.

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
    /// Where replicas share their state (`state:`).
    package var state: StateStore = .embedded
    /// The file the configuration was read from.
    package var sourcePath: String

    /// The realm clients fetch tokens from.
    package var realm: String { token.realm ?? "\(publicURL)/token" }
}
