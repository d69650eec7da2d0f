import Foundation

/// Verifies registry tokens signed by trusted keys, failing closed.
///
/// A token passes only if it is a well-formed compact JWS no larger than
/// ``maximumTokenSize``; its `alg` is one the selected key can produce (never `none`, never
/// HMAC); its `kid`, or its `x5c` leaf, names a trusted key (there is no default key to fall
/// back to); the signature verifies; `iss` equals ``issuer``; `aud` contains ``audience``; and
/// `exp`/`nbf` hold at the given time with ``leeway`` seconds of slack.
public struct TokenVerifier: Sendable {
    /// The only `iss` accepted.
    public var issuer: String
    /// The `aud` value that must be present.
    public var audience: String
    /// The keys signatures are accepted from.
    public var keys: [TrustedKey]
    /// Clock slack for `exp` and `nbf`, in seconds (the registries use 60).
    public var leeway: Double
    /// Tokens longer than this are refused before parsing.
    public var maximumTokenSize: Int

    /// Creates a verifier.
    public init(issuer: String, audience: String, keys: [TrustedKey], leeway: Double = 60, maximumTokenSize: Int = 16 * 1024) {
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.leeway = leeway
        self.maximumTokenSize = maximumTokenSize
    }

    /// Verifies `token` at time `now`.
    /// - Returns: the token's claims.
    /// - Throws: ``PolicyError/Code/invalidToken`` whose message is the reason, for the log.
    public func verify(_ token: String, now: Date) throws -> TokenClaims {
        func reject(_ reason: String) -> PolicyError { PolicyError(.invalidToken, reason) }
        guard token.utf8.count <= maximumTokenSize else {
            throw reject("token is \(token.utf8.count) bytes long; the limit is \(maximumTokenSize)")
        }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw reject("token is not a compact JWS (expected three dot-separated parts)") }
        guard let headerBytes = Base64URL.decode(parts[0]), let payloadBytes = Base64URL.decode(parts[1]),
            let signature = Base64URL.decode(parts[2])
        else { throw reject("token part is not base64url") }

        let header = try JOSEHeader(json: headerBytes)
        guard let alg = header.alg else { throw reject("header has no alg") }
        if alg == "none" || alg.hasPrefix("HS") {
            throw reject("alg \(alg) is never accepted")
        }
        if header.crit != nil { throw reject("header has crit members, which Portcullis does not understand") }

        let key: TrustedKey
        if let kid = header.kid {
            guard let match = keys.first(where: { $0.keyIDs.contains(kid) }) else {
                throw reject("kid \"\(kid)\" names no trusted key")
            }
            key = match
        } else if let leaf = header.x5c?.first {
            guard let der = Data(base64Encoded: leaf).map(Array.init) else { throw reject("x5c leaf is not base64") }
            guard let match = keys.first(where: { $0.certificateDER == der }) else {
                throw reject("x5c leaf certificate is not a trusted certificate")
            }
            key = match
        } else {
            throw reject("header has neither kid nor x5c; there is no default key")
        }
        guard key.publicKey.algorithms.contains(alg) else {
            throw reject("alg \(alg) does not fit the \(key.publicKey.algorithms.sorted().joined(separator: "/")) key it names")
        }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard key.publicKey.isValidSignature(signature, algorithm: alg, signingInput: signingInput) else {
            throw reject("signature does not verify")
        }

        let claims: TokenClaims
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .secondsSince1970
            claims = try decoder.decode(TokenClaims.self, from: Data(payloadBytes))
        } catch {
            throw reject("claims are malformed: \(error)")
        }
        guard claims.iss.value == issuer else {
            throw reject("iss \"\(claims.iss.value)\" is not the expected issuer \"\(issuer)\"")
        }
        guard claims.aud.value.contains(audience) else {
            throw reject("aud \(claims.aud.value) does not contain \"\(audience)\"")
        }
        let time = now.timeIntervalSince1970
        guard time < claims.exp.value.timeIntervalSince1970 + leeway else {
            throw reject("token expired at \(Int(claims.exp.value.timeIntervalSince1970)) (now \(Int(time)), leeway \(Int(leeway)) s)")
        }
        if let nbf = claims.nbf, time + leeway < nbf.value.timeIntervalSince1970 {
            throw reject("token not valid before \(Int(nbf.value.timeIntervalSince1970)) (now \(Int(time)), leeway \(Int(leeway)) s)")
        }
        return claims
    }
}

/// The members of a JOSE header that verification looks at.
struct JOSEHeader {
    var alg: String?
    var kid: String?
    var x5c: [String]?
    var crit: [String]?

    /// Parses a header, refusing duplicate members (JSON parsers disagree on which one wins).
    init(json: [UInt8]) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any] else {
            throw PolicyError(.invalidToken, "header is not a JSON object")
        }
        if Self.hasDuplicateTopLevelKeys(json, expected: object.count) {
            throw PolicyError(.invalidToken, "header has duplicate members")
        }
        func string(_ name: String) throws -> String? {
            guard let value = object[name] else { return nil }
            guard let string = value as? String else { throw PolicyError(.invalidToken, "header member \(name) is not a string") }
            return string
        }
        self.alg = try string("alg")
        self.kid = try string("kid")
        if let value = object["x5c"] {
            guard let list = value as? [String], !list.isEmpty else {
                throw PolicyError(.invalidToken, "header member x5c is not a non-empty list of strings")
            }
            self.x5c = list
        }
        if object["crit"] != nil { self.crit = (object["crit"] as? [String]) ?? [] }
    }

    /// Counts the top-level member names of a JSON object text and compares with the parsed count.
    static func hasDuplicateTopLevelKeys(_ json: [UInt8], expected: Int) -> Bool {
        var depth = 0
        var inString = false
        var escaped = false
        var names = 0
        var expectingName = false
        for byte in json {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                if depth == 1 && expectingName { names += 1; expectingName = false }
                inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth == 1 { expectingName = true }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            case UInt8(ascii: ","):
                if depth == 1 { expectingName = true }
            default:
                break
            }
        }
        return names != expected
    }
}
