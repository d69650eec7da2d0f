import Crypto
import Foundation
import NIOHTTP1
import Policy

/// A logged-in browser: a token Portcullis signs for the audience `ui:<service>` (no registry
/// or token endpoint accepts that audience), carried in an `HttpOnly`, `SameSite=Strict`
/// cookie, `Secure` under TLS. The CSRF token of its forms is derived from it.
struct UISession {
    static let cookieName = "portcullis_ui"
    /// The pre-login cookie whose value the login form must echo (double submit).
    static let loginCookieName = "portcullis_ui_login"

    /// The verified token, as the cookie carries it.
    let token: String
    /// The account, re-checked against the credentials on every page.
    let identity: Identity

    /// The CSRF token of this session's forms.
    var csrf: String { Self.csrf(for: token) }

    static func csrf(for token: String) -> String {
        SHA256.hash(data: Array("portcullis-ui-csrf\u{0}\(token)".utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    static func audience(_ state: GatewayState) -> String { "ui:" + state.configuration.token.service }

    /// A new session token for `identity`.
    static func mint(for identity: Identity, state: GatewayState) throws -> String {
        let configuration = state.configuration
        return try state.clientMinter.mint(
            TokenClaims(
                issuer: configuration.token.issuer, subject: identity.account, audience: audience(state), scopes: [], now: Date(),
                lifetime: configuration.ui.sessionLifetime, id: UUID().uuidString))
    }

    /// The session of a request: its cookie verified, and its account still existing (a removed
    /// user or a revoked robot is logged out). `nil` means: log in.
    static func current(_ headers: HTTPHeaders, state: GatewayState) async -> UISession? {
        guard let token = cookie(cookieName, in: headers) else { return nil }
        let verifier = TokenVerifier(issuer: state.configuration.token.issuer, audience: audience(state), keys: state.ownKeys, leeway: 0)
        guard let claims = try? await verifier.verify(token, now: Date()),
            let identity = try? state.credentials.currentIdentity(account: claims.sub.value, now: Date().timeIntervalSince1970)
        else { return nil }
        return UISession(token: token, identity: identity)
    }

    /// The `Set-Cookie` value for `token` (an empty token with `Max-Age=0` clears it).
    static func setCookie(_ name: String, _ value: String, maxAge: Int, secure: Bool) -> String {
        "\(name)=\(value); Path=/ui; Max-Age=\(maxAge); HttpOnly; SameSite=Strict\(secure ? "; Secure" : "")"
    }

    /// The value of cookie `name` in the request's `Cookie` headers.
    static func cookie(_ name: String, in headers: HTTPHeaders) -> String? {
        for header in headers["cookie"] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                    return String(parts[1]).trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }
}
