import Policy

/// Everything `portcullis serve` is configured with, as read from the YAML file.
///
/// File paths are already resolved against the directory of the configuration file.
struct GatewayConfiguration: Sendable {
    /// A `host:port` to listen on.
    struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
        var host: String
        var port: Int
        var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// The public URL clients use: realm and forwarded headers derive from it.
    struct PublicURL: Sendable, Equatable, CustomStringConvertible {
        var scheme: String
        /// Host with port when one was given, as it goes into `X-Forwarded-Host`.
        var authority: String
        var description: String { "\(scheme)://\(authority)" }
    }

    /// How Portcullis reaches and signs for the registry.
    struct Upstream: Sendable {
        /// The registry's base URL, e.g. `http://127.0.0.1:5001`.
        var url: String
        /// The pinned registry version.
        var registryVersion: RegistryVersion = .v2_8
        /// The configured key hint word: `x5c`, `kid` or `jwks`.
        var keyHint: String = "x5c"
        /// The `kid` for `key_hint: jwks`; defaults to the key's RFC 7638 thumbprint.
        var jwksKid: String?
        /// The registry's `auth.token.service`.
        var service: String
        /// The registry's `auth.token.issuer`.
        var issuer: String
        /// Lifetime of upstream tokens in seconds.
        var tokenLifetime: Int = 300
    }

    /// The token server Portcullis runs for its clients.
    struct Token: Sendable {
        var service: String
        var issuer: String
        /// PEM private key path.
        var key: String
        /// PEM certificate chain path, leaf first.
        var certificate: String?
        /// Client token lifetime in seconds.
        var lifetime: Int = 300
        /// The realm announced in challenges; defaults to `<public_url>/token`.
        var realm: String?
        /// Refresh token lifetime in seconds.
        var refreshLifetime: Int = 30 * 86_400
        /// The key that will replace ``key``: trusted already, announced by `registry-config`
        /// and `/jwks`, never signed with.
        var nextKey: String?
        /// The certificate of ``nextKey``.
        var nextCertificate: String?
    }

    /// Brute-force throttling of failed authentications.
    struct Throttling: Sendable {
        /// Failures per account within ``window`` before the account is refused.
        var maxFailures: Int = 5
        /// Failures per client address within ``window`` before the address is refused.
        var maxFailuresPerAddress: Int = 50
        /// Seconds over which failures are counted.
        var window: Int = 60
        /// Seconds a throttled account or address is refused.
        var cooldown: Int = 300
    }

    /// An external token issuer whose tokens clients may present (migration shim).
    struct ExternalIssuer: Sendable {
        /// The `iss` value.
        var issuer: String
        /// The `aud` values accepted.
        var audiences: [String]
        /// PEM certificate files: trusted as keys and as `x5c` chain anchors.
        var certificates: [String] = []
        /// PEM public key files.
        var publicKeys: [String] = []
        /// A JWKS file; each key is trusted under its `kid`.
        var jwks: String?
        /// Take the token's `access` claim as is instead of intersecting it with the rules.
        var trustAccessClaim = false
    }

    /// TLS termination: certificate chain and key files.
    struct TLS: Sendable {
        var certificate: String
        var key: String
    }

    var listen: ListenAddress
    var publicURL: PublicURL
    /// TLS on the listener (HTTP/2 and HTTP/1.1 by ALPN); plain HTTP/1.1 without it.
    var tls: TLS?
    /// Whether every connection starts with a PROXY protocol (v1 or v2) header.
    var proxyProtocol = false
    /// Peers whose `X-Forwarded-For` names the client (CIDR ranges).
    var trustedProxies: [String] = []
    var upstream: Upstream
    var token: Token
    /// Path of the htpasswd file, if users log in with passwords.
    var htpasswd: String?
    /// Path of the robots file (it may not exist yet).
    var robots: String?
    /// Brute-force throttling.
    var throttling = Throttling()
    /// External issuers.
    var issuers: [ExternalIssuer] = []
    /// Seconds between readiness checks against the registry.
    var readinessInterval: Int = 10
    /// Seconds in-flight requests may take to finish after SIGTERM.
    var shutdownGracePeriod: Int = 30
    /// Seconds a connection may take to send a complete request head (idle and slowloris bound).
    var requestHeadTimeout: Int = 60
    /// The rule list in order.
    var rules: [Rule]
    /// The rule list as written, for explanations.
    var ruleSources: [String]
    /// swift-log level name.
    var logLevel: String = "info"
    /// Log line format: `logfmt` or `json`.
    var logFormat: String = "logfmt"
    /// Audit destination: `stdout`, `stderr`, `off`, or a file path.
    var auditDestination: String = "stdout"
    /// The file the configuration was read from.
    var sourcePath: String

    /// The realm clients fetch tokens from.
    var realm: String { token.realm ?? "\(publicURL)/token" }
}
