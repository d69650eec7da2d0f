import Foundation

/// A real OpenID Connect provider, `oidc-provider-mock` from PyPI (installed by scripts/setup),
/// on a loopback port. It serves discovery and a JWKS, and signs ID tokens (RS256) carrying the
/// claims a test sets for a subject. Its key is made when it starts: a restart rotates it.
public final class OIDCProvider: @unchecked Sendable {
    public let port: Int
    private let directory: String
    private var process: ServiceProcess?

    /// The issuer (`iss`) of its tokens: the URL it is reached at.
    public var issuer: String { "http://127.0.0.1:\(port)" }
    public var log: String { process?.log ?? "" }

    /// Starts one; `tokenMaxAge` is the lifetime of its tokens in seconds (its default is an hour).
    public static func start(in directory: String, tokenMaxAge: Int? = nil) async throws -> OIDCProvider {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let provider = OIDCProvider(port: try freeLoopbackPort(), directory: directory, tokenMaxAge: tokenMaxAge)
        try await provider.launch()
        return provider
    }

    private let tokenMaxAge: Int?

    private init(port: Int, directory: String, tokenMaxAge: Int?) {
        self.port = port
        self.directory = directory
        self.tokenMaxAge = tokenMaxAge
    }

    deinit { stop() }

    private func launch() async throws {
        process = try ServiceProcess(
            "/usr/bin/env",
            ["python3", "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", String(port)] + (tokenMaxAge.map { ["--token-max-age", String($0)] } ?? []),
            logPath: directory + "/oidc-provider-\(port).log")
        try await waitUntilAnswering("\(issuer)/.well-known/openid-configuration", timeout: .seconds(30))
    }

    /// Its JWKS document as served.
    public func jwks() async throws -> String {
        try await Command("curl", ["-sf", "\(issuer)/jwks"], timeout: .seconds(30)).runInBackground().checked().standardOutput
    }

    /// Stops the provider (by its PID).
    public func stop() { process?.stop() }

    /// Restarts it on the same port: a new signing key, and no subjects.
    public func restart() async throws {
        stop()
        try await launch()
    }

    /// An ID token for `subject` with `claims`, for the client (audience) `audience`: the
    /// provider's test endpoint sets the claims, then an authorization-code flow without a
    /// browser returns the signed token.
    public func idToken(subject: String, claims: [String: Any], audience: String = "portcullis") async throws -> String {
        let body = String(decoding: try JSONSerialization.data(withJSONObject: claims), as: UTF8.self)
        _ = try await Command(
            "curl", ["-sf", "-X", "PUT", "\(issuer)/users/\(subject)", "-H", "Content-Type: application/json", "-d", body], timeout: .seconds(30)
        ).runInBackground().checked()
        let redirect = try await Command(
            "curl", ["-s", "-o", "/dev/null", "-w", "%{redirect_url}", "-X", "POST",
                     "\(issuer)/oauth2/authorize?response_type=code&client_id=\(audience)&redirect_uri=http://127.0.0.1/cb&scope=openid&state=s",
                     "--data-urlencode", "sub=\(subject)"], timeout: .seconds(30)
        ).runInBackground().checked().standardOutput
        guard let code = URLComponents(string: redirect)?.queryItems?.first(where: { $0.name == "code" })?.value else {
            throw HarnessError("the provider did not redirect with a code: \(redirect)")
        }
        let answer = try await Command(
            "curl", ["-sf", "-X", "POST", "\(issuer)/oauth2/token", "-u", "\(audience):secret", "-d", "grant_type=authorization_code",
                     "-d", "code=\(code)", "-d", "redirect_uri=http://127.0.0.1/cb"], timeout: .seconds(30)
        ).runInBackground().checked().standardOutput
        guard let object = try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any], let token = object["id_token"] as? String else {
            throw HarnessError("no id_token in \(answer)")
        }
        return token
    }
}
