import Foundation

/// An OpenID Connect issuer whose signed identity tokens (GitLab CI `id_tokens`, GitHub
/// Actions, Kubernetes service-account tokens, …) are accepted as the password of a Basic
/// credential or as the subject token of a token exchange (`users.oidc`).
///
/// Verification fails closed: the header and signature as ``TokenVerifier`` checks them (a
/// trusted key by `kid`, `alg` from the key, never `none` or HMAC), then `iss` equal to
/// ``issuer``, `aud` containing one of ``audiences``, `exp` required, `nbf` and `iat` within
/// ``leeway``, and every ``required`` claim equal to its value. The identity's account and
/// labels come from the claims through templates.
public struct OIDCIssuer: Sendable {
    /// The `iss` value.
    public var issuer: String
    /// The `aud` values accepted.
    public var audiences: Set<String>
    /// The account name rules see, e.g. `ci:${claims:project_path}`.
    public var account: ClaimTemplate
    /// Label name → template.
    public var labels: [String: ClaimTemplate]
    /// Claim name → the only value accepted (claims compared as text: `true`, `42`).
    public var required: [String: String]
    /// Clock slack for `exp`, `nbf` and `iat`, in seconds.
    public var leeway: Double

    public init(
        issuer: String, audiences: Set<String>, account: ClaimTemplate, labels: [String: ClaimTemplate] = [:], required: [String: String] = [:],
        leeway: Double = 60
    ) {
        self.issuer = issuer
        self.audiences = audiences
        self.account = account
        self.labels = labels
        self.required = required
        self.leeway = leeway
    }

    /// Verifies `token` with `keys` at `now`.
    /// - Returns: the identity (kind ``Identity/Kind/oidc``) and the token's expiry.
    /// - Throws: ``PolicyError/Code/invalidToken`` whose message is the reason, for the log.
    public func identity(from token: UnverifiedToken, keys: [TrustedKey], now: Date) async throws -> (identity: Identity, expires: Double) {
        func reject(_ reason: String) -> PolicyError { PolicyError(.invalidToken, reason) }
        var verifier = TokenVerifier(issuer: issuer, audiences: audiences, keys: keys, leeway: leeway)
        verifier.searchesKeysWithoutKid = true
        try await verifier.verifySignature(token, now: now)
        let claims = try Self.claims(token.payloadJSON)
        guard claims.strings["iss"] == [issuer] else {
            throw reject("iss \(claims.strings["iss"] ?? []) is not the expected issuer \"\(issuer)\"")
        }
        let audience = claims.strings["aud"] ?? []
        guard audience.contains(where: audiences.contains) else {
            throw reject("aud \(audience) contains none of \(audiences.sorted())")
        }
        let time = now.timeIntervalSince1970
        guard let exp = claims.times["exp"] else { throw reject("token has no exp") }
        guard time < exp + leeway else { throw reject("token expired at \(Int(exp)) (now \(Int(time)), leeway \(Int(leeway)) s)") }
        if let nbf = claims.times["nbf"], time + leeway < nbf {
            throw reject("token not valid before \(Int(nbf)) (now \(Int(time)), leeway \(Int(leeway)) s)")
        }
        if let iat = claims.times["iat"], iat > time + leeway {
            throw reject("token issued in the future (iat \(Int(iat)), now \(Int(time)), leeway \(Int(leeway)) s)")
        }
        for (name, value) in required.sorted(by: { $0.key < $1.key }) where claims.strings[name] != [value] {
            throw reject("claim \(name) is \(claims.strings[name].map { "\($0)" } ?? "missing"), \"\(value)\" is required")
        }
        let accounts = try account.expand(claims.strings)
        guard accounts.count == 1, let name = accounts.first, !name.isEmpty else {
            throw reject("the account template \"\(account)\" gives \(accounts.count) names")
        }
        var values: [String: [String]] = [:]
        for (label, template) in labels {
            // A label whose claim is absent is simply not set: rules requiring it do not match.
            if let expanded = try? template.expand(claims.strings) { values[label] = expanded }
        }
        return (Identity(account: name, kind: .oidc, labels: values), exp)
    }

    /// The top-level claims as text (`true`, `42`; a list of scalars as its elements) and the
    /// numeric times.
    static func claims(_ json: [UInt8]) throws -> (strings: [String: [String]], times: [String: Double]) {
        guard let object = try? JSONDecoder().decode([String: ClaimValue].self, from: Data(json)) else {
            throw PolicyError(.invalidToken, "claims are not a JSON object")
        }
        if JOSEHeader.hasDuplicateTopLevelKeys(json, expected: object.count) {
            throw PolicyError(.invalidToken, "claims have duplicate members")
        }
        var strings: [String: [String]] = [:]
        var times: [String: Double] = [:]
        for (name, value) in object {
            switch value {
            case .list(let list): strings[name] = list.compactMap(\.text)
            default: if let text = value.text { strings[name] = [text] }
            }
            if ["exp", "nbf", "iat"].contains(name) {
                guard case .number(let number) = value else { throw PolicyError(.invalidToken, "claim \(name) is not a number") }
                times[name] = number
            }
        }
        return (strings, times)
    }

    /// A claim's JSON value, as far as templates and checks read it.
    enum ClaimValue: Decodable {
        case string(String)
        case bool(Bool)
        case number(Double)
        case list([ClaimValue])
        case other

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else if let value = try? container.decode(Double.self) {
                self = .number(value)
            } else if let value = try? container.decode(String.self) {
                self = .string(value)
            } else if let value = try? container.decode([ClaimValue].self) {
                self = .list(value)
            } else {
                self = .other
            }
        }

        /// The scalar as text; `nil` for lists, objects and null.
        var text: String? {
            switch self {
            case .string(let value): value
            case .bool(let value): value ? "true" : "false"
            case .number(let value): value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
            case .list, .other: nil
            }
        }
    }
}
