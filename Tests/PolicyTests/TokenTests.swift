import Foundation
import Policy
import Testing
import TestSupport

/// One way to mint: a shared key and a key hint.
struct MintCase: Sendable, CustomTestStringConvertible {
    var key: KeyGenerator.Algorithm
    var hint: KeyHint
    var testDescription: String { "\(key.rawValue) with \(hint)" }

    static let all: [MintCase] =
        [KeyGenerator.Algorithm.es256, .rs256].flatMap { key in
            [KeyHint.x5c, .kid(.v2_8), .kid(.v3_1), .jwks(kid: "some-kid")].map { MintCase(key: key, hint: $0) }
        } + [MintCase(key: .rs256, hint: .kid(.v3_0))]
}

/// Splits a compact JWS and decodes its header and payload.
struct DecodedToken {
    var headerText: String
    var payloadText: String
    var header: [String: Any]
    var payload: [String: Any]

    init(_ token: String) throws {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        try #require(parts.count == 3)
        let headerBytes = try #require(PolicyFixtures.bytes(base64URL: parts[0]))
        let payloadBytes = try #require(PolicyFixtures.bytes(base64URL: parts[1]))
        headerText = String(decoding: headerBytes, as: UTF8.self)
        payloadText = String(decoding: payloadBytes, as: UTF8.self)
        header = try #require(try JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any])
        payload = try #require(try JSONSerialization.jsonObject(with: Data(payloadBytes)) as? [String: Any])
    }

    /// The literal JSON text of a top-level payload member's value (up to the next `,` or `}`).
    func rawPayloadValue(_ name: String) -> String? {
        guard let range = payloadText.range(of: "\"\(name)\":") else { return nil }
        let rest = payloadText[range.upperBound...]
        return String(rest.prefix(while: { $0 != "," && $0 != "}" }))
    }
}

enum TokenFixtures {
    static let lifetime = 300

    static func claims(
        issuer: String = PolicyFixtures.issuer, audience: String = PolicyFixtures.audience, lifetime: Int = lifetime,
        id: String = "token-id-1"
    ) throws -> TokenClaims {
        TokenClaims(
            issuer: issuer, subject: "alice", audience: audience,
            scopes: [try Scope(parsing: "repository:team/app:pull,push"), Scope(resource: .catalog, actions: .all)],
            now: PolicyFixtures.now, lifetime: lifetime, id: id)
    }

    /// A verifier that trusts the shared ES256 key (also as `some-kid`) and the shared RSA key.
    static func verifier(maximumTokenSize: Int = 16 * 1024) throws -> TokenVerifier {
        let es256 = try PolicyFixtures.key(.es256).signingKey
        let rs256 = try PolicyFixtures.key(.rs256).signingKey
        return TokenVerifier(
            issuer: PolicyFixtures.issuer, audience: PolicyFixtures.audience,
            keys: [
                TrustedKey(publicKey: es256.publicKey, keyIDs: ["some-kid"], certificateDER: es256.leafDER),
                TrustedKey(publicKey: rs256.publicKey, keyIDs: ["some-kid-rsa"], certificateDER: rs256.leafDER),
            ],
            maximumTokenSize: maximumTokenSize)
    }

    static func at(_ offset: Int) -> Date { Date(timeIntervalSince1970: Double(PolicyFixtures.nowSeconds + offset)) }

    /// A valid ES256 token with the shared key, announced by libtrust kid.
    static func es256Token(_ claims: TokenClaims? = nil, hint: KeyHint = .kid(.v2_8)) throws -> String {
        try TokenMinter(key: try PolicyFixtures.key(.es256).signingKey, hint: hint).mint(try claims ?? Self.claims())
    }

    /// The claims JSON text a hand-made token carries.
    static func payloadText(issuer: String = PolicyFixtures.issuer, audience: String = "\"\(PolicyFixtures.audience)\"", extra: String = "")
        -> String
    {
        let now = PolicyFixtures.nowSeconds
        return #"{"iss":"\#(issuer)","sub":"alice","aud":\#(audience),"exp":\#(now + lifetime),"nbf":\#(now),"iat":\#(now),"access":[]\#(extra)}"#
    }
}

@Suite("Token minting")
struct TokenMinterTests {
    @Test("the header has exactly alg, typ and the one promised key member", arguments: MintCase.all)
    func headerHasExactlyPromisedMembers(_ mint: MintCase) throws {
        let key = try PolicyFixtures.key(mint.key)
        let minter = try TokenMinter(key: key.signingKey, hint: mint.hint)
        let token = try DecodedToken(try minter.mint(try TokenFixtures.claims()))
        #expect(Set(token.header.keys) == ["alg", "typ", mint.hint.headerMember])
        #expect(token.header["alg"] as? String == key.jwsAlgorithm)
        #expect(token.header["typ"] as? String == "JWT")
        let ids = key.signingKey.identifiers
        switch mint.hint {
        case .x5c:
            let certificatePEM = try #require(key.certificatePEM)
            let certificateDER = try #require(PolicyFixtures.der(fromPEM: certificatePEM))
            #expect(token.header["x5c"] as? [String] == [Data(certificateDER).base64EncodedString()])
        case .kid(.v2_8):
            #expect(token.header["kid"] as? String == ids.libtrust)
        case .kid(.v3_1):
            #expect(token.header["kid"] as? String == ids.registry31)
        case .kid(.v3_0):
            #expect(token.header["kid"] as? String == ids.rfc7638)
        case .jwks(let kid):
            #expect(token.header["kid"] as? String == kid)
        }
        // The minter's advertised header is the one it writes.
        #expect(Set(minter.header.keys) == Set(token.header.keys))
    }

    @Test("exp, nbf and iat are whole-second JSON integers and aud is a JSON string", arguments: [
        KeyGenerator.Algorithm.es256, .rs256,
    ])
    func claimEncoding(_ algorithm: KeyGenerator.Algorithm) throws {
        let token = try DecodedToken(try TokenMinter(key: try PolicyFixtures.key(algorithm).signingKey, hint: .x5c).mint(try TokenFixtures.claims()))
        let now = PolicyFixtures.nowSeconds
        #expect(token.rawPayloadValue("exp") == "\(now + TokenFixtures.lifetime)", "\(token.payloadText)")
        #expect(token.rawPayloadValue("nbf") == "\(now)", "\(token.payloadText)")
        #expect(token.rawPayloadValue("iat") == "\(now)", "\(token.payloadText)")
        #expect(token.rawPayloadValue("aud") == "\"\(PolicyFixtures.audience)\"", "\(token.payloadText)")
        #expect(token.payload["iss"] as? String == PolicyFixtures.issuer)
        #expect(token.payload["sub"] as? String == "alice")
        #expect(token.payload["jti"] as? String == "token-id-1")
        let access = try #require(token.payload["access"] as? [[String: Any]])
        #expect(access.count == 2)
        #expect(access.first?["type"] as? String == "repository")
        #expect(access.first?["name"] as? String == "team/app")
        #expect(access.first?["actions"] as? [String] == ["pull", "push"])
        #expect(access.last?["actions"] as? [String] == ["*"])
    }

    @Test("every minted token verifies with joserfc using only the public key, with the claims intact", arguments: MintCase.all)
    func independentVerification(_ mint: MintCase) throws {
        let key = try PolicyFixtures.key(mint.key)
        let token = try TokenMinter(key: key.signingKey, hint: mint.hint).mint(try TokenFixtures.claims())
        let pem = try #require(key.certificatePEM)
        let verified = try IndependentJOSE.verify(token: token, pem: pem, algorithm: key.jwsAlgorithm)
        #expect(verified.header["alg"] as? String == key.jwsAlgorithm)
        #expect(Set(verified.header.keys) == ["alg", "typ", mint.hint.headerMember])
        #expect(verified.claims["iss"] as? String == PolicyFixtures.issuer)
        #expect(verified.claims["aud"] as? String == PolicyFixtures.audience)
        #expect(verified.claims["exp"] as? Int == PolicyFixtures.nowSeconds + TokenFixtures.lifetime)
        #expect(verified.claimTypes["exp"] == "int")
        #expect(verified.claimTypes["nbf"] == "int")
        #expect(verified.claimTypes["iat"] == "int")
        #expect(verified.claimTypes["aud"] == "str")

        // Negative control: the same verifier refuses a token whose payload was altered.
        let parts = token.split(separator: ".")
        let forgedPayload = PolicyFixtures.base64URL(Array(TokenFixtures.payloadText(issuer: "someone-else").utf8))
        let forged = "\(parts[0]).\(forgedPayload).\(parts[2])"
        #expect(try IndependentJOSE.refuses(token: forged, pem: pem, algorithm: key.jwsAlgorithm))
    }

    @Test("an ES384 token from a P-384 key verifies with joserfc")
    func es384IndependentVerification() throws {
        let key = try PolicyFixtures.es384Key()
        #expect(key.jwsAlgorithm == "ES384")
        let token = try TokenMinter(key: key.signingKey, hint: .kid(.v3_1)).mint(try TokenFixtures.claims())
        let verified = try IndependentJOSE.verify(token: token, pem: key.privateKeyPEM, algorithm: "ES384")
        #expect(verified.header["kid"] as? String == key.signingKey.identifiers.registry31)
        #expect(verified.claims["sub"] as? String == "alice")
    }

    @Test("kid for registry 3.0 on an EC key is refused with unsupportedKeyForRegistry")
    func registry30KidOnECRefused() throws {
        expectPolicyError(.unsupportedKeyForRegistry, messageContains: [KeyIdentifiers.registry30P256]) {
            try TokenMinter(key: try PolicyFixtures.key(.es256).signingKey, hint: .kid(.v3_0))
        }
        expectPolicyError(.unsupportedKeyForRegistry, messageContains: [KeyIdentifiers.registry30P384]) {
            try TokenMinter(key: try PolicyFixtures.es384Key().signingKey, hint: .kid(.v3_0))
        }
        #expect(throws: Never.self) { try TokenMinter(key: try PolicyFixtures.key(.rs256).signingKey, hint: .kid(.v3_0)) }
    }

    @Test("x5c without a certificate, and an empty jwks kid, are refused with unsupportedKeyForRegistry")
    func x5cWithoutCertificateRefused() throws {
        let bare = try PolicyFixtures.key(.es256).signingKeyWithoutCertificate()
        #expect(bare.certificateChain.isEmpty)
        #expect(bare.leafDER == nil)
        expectPolicyError(.unsupportedKeyForRegistry, messageContains: ["certificate"]) { try TokenMinter(key: bare, hint: .x5c) }
        expectPolicyError(.unsupportedKeyForRegistry) { try TokenMinter(key: bare, hint: .jwks(kid: "")) }
        // A kid needs no certificate.
        #expect(throws: Never.self) { try TokenMinter(key: bare, hint: .kid(.v2_8)) }
    }

    @Test("claims are truncated to whole seconds and carry the granted scopes")
    func claimsFromScopes() throws {
        let claims = try TokenFixtures.claims(lifetime: 60)
        #expect(claims.iat?.value == Date(timeIntervalSince1970: Double(PolicyFixtures.nowSeconds)))
        #expect(claims.nbf?.value == claims.iat?.value)
        #expect(claims.exp.value == Date(timeIntervalSince1970: Double(PolicyFixtures.nowSeconds + 60)))
        #expect(claims.scopes.map(\.description) == ["repository:team/app:pull,push", "registry:catalog:*"])
        let unknownAction = TokenClaims.AccessEntry(type: "repository", name: "a", actions: ["pull", "fly"])
        #expect(unknownAction.scope.actions == .pull)
    }
}

@Suite("Token verification")
struct TokenVerifierTests {
    // MARK: Accepted

    @Test("the verifier accepts its own tokens by kid, by jwks kid and by x5c leaf", arguments: MintCase.all)
    func acceptsOwnTokens(_ mint: MintCase) async throws {
        let key = try PolicyFixtures.key(mint.key)
        let hint: KeyHint = mint.key == .rs256 && mint.hint == .jwks(kid: "some-kid") ? .jwks(kid: "some-kid-rsa") : mint.hint
        let claims = try TokenFixtures.claims()
        let token = try TokenMinter(key: key.signingKey, hint: hint).mint(claims)
        let verified = try await TokenFixtures.verifier().verify(token, now: PolicyFixtures.now)
        #expect(verified == claims)
        #expect(verified.scopes == claims.scopes)
    }

    @Test("a token is accepted up to 60 s after exp and up to 60 s before nbf", arguments: [
        -60, -1, 0, 150, TokenFixtures.lifetime, TokenFixtures.lifetime + 59,
    ])
    func acceptedWithinLeeway(_ offset: Int) async throws {
        let token = try TokenFixtures.es256Token()
        await #expect(throws: Never.self) { try await TokenFixtures.verifier().verify(token, now: TokenFixtures.at(offset)) }
    }

    @Test("a hand-signed token with an audience list containing ours is accepted")
    func audienceListAccepted() async throws {
        let key = try PolicyFixtures.key(.es256)
        let token = try IndependentJOSE.sign(
            header: #"{"alg":"ES256","typ":"JWT","kid":"\#(key.signingKey.identifiers.libtrust)"}"#,
            payload: TokenFixtures.payloadText(audience: #"["other","\#(PolicyFixtures.audience)"]"#),
            algorithm: "ES256", privateKeyPEM: key.privateKeyPEM)
        let claims = try await TokenFixtures.verifier().verify(token, now: PolicyFixtures.now)
        #expect(claims.aud.value == ["other", PolicyFixtures.audience])
    }

    @Test("an RSA key may sign RS384 and RS512 too (hand-signed tokens)", arguments: ["RS256", "RS384", "RS512"])
    func rsaAlgorithms(_ algorithm: String) async throws {
        let key = try PolicyFixtures.key(.rs256)
        let token = try IndependentJOSE.sign(
            header: #"{"alg":"\#(algorithm)","typ":"JWT","kid":"\#(key.signingKey.identifiers.rfc7638)"}"#,
            payload: TokenFixtures.payloadText(), algorithm: algorithm, privateKeyPEM: key.privateKeyPEM)
        await #expect(throws: Never.self) { try await TokenFixtures.verifier().verify(token, now: PolicyFixtures.now) }
    }

    // MARK: Refused

    @Test("a token past exp + 60 s, or before nbf − 60 s, is refused", arguments: [
        -61, -3600, TokenFixtures.lifetime + 61, 86_400,
    ])
    func refusedOutsideLeeway(_ offset: Int) async throws {
        let token = try TokenFixtures.es256Token()
        let reason = offset < 0 ? "not valid before" : "expired"
        await expectPolicyError(.invalidToken, messageContains: [reason]) {
            try await TokenFixtures.verifier().verify(token, now: TokenFixtures.at(offset))
        }
    }

    @Test("a token with alg none is refused")
    func algNoneRefused() async throws {
        let kid = try PolicyFixtures.key(.es256).signingKey.identifiers.libtrust
        let header = PolicyFixtures.base64URL(Array(#"{"alg":"none","typ":"JWT","kid":"\#(kid)"}"#.utf8))
        let payload = PolicyFixtures.base64URL(Array(TokenFixtures.payloadText().utf8))
        for token in ["\(header).\(payload).", "\(header).\(payload).AAAA"] {
            await expectPolicyError(.invalidToken, messageContains: ["none"]) {
                try await TokenFixtures.verifier().verify(token, now: PolicyFixtures.now)
            }
        }
    }

    @Test("HS256 keyed with the public key's PEM (the classic algorithm-confusion forgery) is refused")
    func hmacWithPublicKeyRefused() async throws {
        let key = try PolicyFixtures.key(.es256)
        let secret = try key.publicKeyPEM()
        for kid in [key.signingKey.identifiers.libtrust, "some-kid"] {
            let token = try IndependentJOSE.sign(
                header: #"{"alg":"HS256","typ":"JWT","kid":"\#(kid)"}"#, payload: TokenFixtures.payloadText(),
                algorithm: "HS256", hmacSecret: secret)
            await expectPolicyError(.invalidToken, messageContains: ["HS256"]) {
                try await TokenFixtures.verifier().verify(token, now: PolicyFixtures.now)
            }
        }
    }

    @Test("a valid signature from an untrusted key is refused, by kid and by x5c")
    func unknownKeyRefused() async throws {
        let stranger = try PolicyFixtures.otherES256Key().signingKey
        for hint in [KeyHint.kid(.v2_8), .kid(.v3_1), .x5c] {
            let token = try TokenMinter(key: stranger, hint: hint).mint(try TokenFixtures.claims())
            await expectPolicyError(.invalidToken, messageContains: [hint == .x5c ? "certificate" : "names no trusted key"]) {
                try await TokenFixtures.verifier().verify(token, now: PolicyFixtures.now)
            }
        }
    }

    @Test("a kid naming a trusted key does not make another key's signature valid")
    func kidNamingAnotherKeyRefused() async throws {
        let stranger = try PolicyFixtures.otherES256Key().signingKey
        let trusted = try PolicyFixtures.key(.es256).signingKey.identifiers
        for kid in [trusted.libtrust, trusted.rfc7638, "some-kid"] {
            let token = try TokenMinter(key: stranger, hint: .jwks(kid: kid)).mint(try TokenFixtures.claims())
            await expectPolicyError(.invalidToken, messageContains: ["signature"]) {
                try await TokenFixtures.verifier().verify(token, now: PolicyFixtures.now)
            }
        }
        // An EC signature announced with the RSA key's kid fails on the algorithm already.
        let rsaKid = try PolicyFixtures.key(.rs256).signingKey.identifiers.libtrust
        let crossed = try TokenMinter(key: stranger, hint: .jwks(kid: rsaKid)).mint(try TokenFixtures.claims())
        await expectPolicyError(.invalidToken, messageContains: ["ES256"]) {
            try await TokenFixtures.verifier().verify(crossed, now: PolicyFixtures.now)
        }
    }

    @Test("a token whose x5c names another certificate than the key's own is refused")
    func x5cOfOtherCertificateRefused() async throws {
        let own = try PolicyFixtures.key(.es256)
        let other = try PolicyFixtures.otherES256Key()
        let otherLeaf = Data(try #require(other.signingKey.leafDER)).base64EncodedString()
        let token = try IndependentJOSE.sign(
            header: #"{"alg":"ES256","typ":"JWT","x5c":["\#(otherLeaf)"]}"#, payload: TokenFixtures.payloadText(),
            algorithm: "ES256", privateKeyPEM: own.privateKeyPEM)
        await expectPolicyError(.invalidToken) { try await TokenFixtures.verifier().verify(token, now: PolicyFixtures.now) }
        let garbage = try IndependentJOSE.sign(
            header: #"{"alg":"ES256","typ":"JWT","x5c":["***"]}"#, payload: TokenFixtures.payloadText(),
            algorithm: "ES256", privateKeyPEM: own.privateKeyPEM)
        await expectPolicyError(.invalidToken) { try await TokenFixtures.verifier().verify(garbage, now: PolicyFixtures.now) }
    }

    @Test("wrong iss or aud is refused", arguments: [
        ("iss", "someone-else"), ("aud", "another-registry"),
    ])
    func wrongIssuerOrAudienceRefused(_ claim: String, _ value: String) async throws {
        let claims =
            claim == "iss" ? try TokenFixtures.claims(issuer: value) : try TokenFixtures.claims(audience: value)
        let token = try TokenFixtures.es256Token(claims)
        await expectPolicyError(.invalidToken, messageContains: [claim, value]) {
            try await TokenFixtures.verifier().verify(token, now: PolicyFixtures.now)
        }
    }

    @Test("truncated or garbage tokens are refused", arguments: [
        "truncated signature", "one byte short", "no signature", "two parts", "four parts", "empty", "dots",
        "garbage", "padded base64", "header not JSON", "tampered payload",
    ])
    func malformedRefused(_ kind: String) async throws {
        let token = try TokenFixtures.es256Token()
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let candidate: String =
            switch kind {
            case "truncated signature": String(token.dropLast(20))
            case "one byte short": String(token.dropLast(1))
            case "no signature": parts[0] + "." + parts[1] + "."
            case "two parts": parts[0] + "." + parts[1]
            case "four parts": token + ".AAAA"
            case "empty": ""
            case "dots": ".."
            case "garbage": "this is not a token"
            case "padded base64": parts[0] + "=." + parts[1] + "." + parts[2]
            case "header not JSON": PolicyFixtures.base64URL(Array("not json".utf8)) + "." + parts[1] + "." + parts[2]
            default: parts[0] + "." + PolicyFixtures.base64URL(Array(TokenFixtures.payloadText(issuer: "x").utf8)) + "." + parts[2]
            }
        await expectPolicyError(.invalidToken) { try await TokenFixtures.verifier().verify(candidate, now: PolicyFixtures.now) }
    }

    @Test("an oversized token is refused before parsing, even with a valid signature")
    func oversizedRefused() async throws {
        let huge = try TokenFixtures.es256Token(try TokenFixtures.claims(id: String(repeating: "x", count: 20_000)))
        #expect(huge.utf8.count > 16 * 1024)
        await expectPolicyError(.invalidToken, messageContains: ["\(huge.utf8.count) bytes"]) {
            try await TokenFixtures.verifier().verify(huge, now: PolicyFixtures.now)
        }
        // The limit is a parameter: a normal token passes the default and fails a tiny limit.
        let normal = try TokenFixtures.es256Token()
        await #expect(throws: Never.self) { try await TokenFixtures.verifier().verify(normal, now: PolicyFixtures.now) }
        await expectPolicyError(.invalidToken) {
            try await TokenFixtures.verifier(maximumTokenSize: normal.utf8.count - 1).verify(normal, now: PolicyFixtures.now)
        }
        await #expect(throws: Never.self) {
            try await TokenFixtures.verifier(maximumTokenSize: normal.utf8.count).verify(normal, now: PolicyFixtures.now)
        }
    }

    @Test("hand-signed control: the same header without duplicates is accepted")
    func handSignedControlAccepted() async throws {
        let key = try PolicyFixtures.key(.es256)
        let kid = key.signingKey.identifiers.libtrust
        let token = try IndependentJOSE.sign(
            header: #"{"alg":"ES256","typ":"JWT","kid":"\#(kid)"}"#, payload: TokenFixtures.payloadText(),
            algorithm: "ES256", privateKeyPEM: key.privateKeyPEM)
        await #expect(throws: Never.self) { try await TokenFixtures.verifier().verify(token, now: PolicyFixtures.now) }
    }

    @Test("a correctly signed token with duplicated header members is refused", arguments: [
        #"{"alg":"ES256","typ":"JWT","kid":"KID","kid":"KID"}"#,
        #"{"alg":"ES256","typ":"JWT","kid":"unknown","kid":"KID"}"#,
        #"{"alg":"ES256","typ":"JWT","kid":"KID","kid":"unknown"}"#,
        #"{"alg":"HS256","alg":"ES256","typ":"JWT","kid":"KID"}"#,
        #"{"alg":"ES256","typ":"JWT","typ":"JWT","kid":"KID"}"#,
        #"{"alg":"ES256","typ":"JWT","kid":"KID","k\u0069d":"KID"}"#,
    ])
    func duplicateHeaderMembersRefused(_ headerTemplate: String) async throws {
        let key = try PolicyFixtures.key(.es256)
        let header = headerTemplate.replacingOccurrences(of: "KID", with: key.signingKey.identifiers.libtrust)
        let token = try IndependentJOSE.sign(
            header: header, payload: TokenFixtures.payloadText(), algorithm: "ES256", privateKeyPEM: key.privateKeyPEM)
        await expectPolicyError(.invalidToken) { try await TokenFixtures.verifier().verify(token, now: PolicyFixtures.now) }
    }

    @Test("correctly signed tokens with a crit member, no key member, or broken claims are refused", arguments: [
        ("crit", #"{"alg":"ES256","typ":"JWT","kid":"KID","crit":["exp"]}"#, TokenFixtures.payloadText()),
        ("no key member", #"{"alg":"ES256","typ":"JWT"}"#, TokenFixtures.payloadText()),
        ("no alg", #"{"typ":"JWT","kid":"KID"}"#, TokenFixtures.payloadText()),
        ("kid not a string", #"{"alg":"ES256","kid":["KID"]}"#, TokenFixtures.payloadText()),
        ("alg of another curve", #"{"alg":"ES384","typ":"JWT","kid":"KID"}"#, TokenFixtures.payloadText()),
        ("claims without exp", #"{"alg":"ES256","typ":"JWT","kid":"KID"}"#, #"{"iss":"\#(PolicyFixtures.issuer)","sub":"a","aud":"\#(PolicyFixtures.audience)","access":[]}"#),
        ("claims not JSON", #"{"alg":"ES256","typ":"JWT","kid":"KID"}"#, "not json"),
        ("audience list without ours", #"{"alg":"ES256","typ":"JWT","kid":"KID"}"#, TokenFixtures.payloadText(audience: #"["a","b"]"#)),
    ] as [(String, String, String)])
    func malformedSignedTokensRefused(_ label: String, _ headerTemplate: String, _ payload: String) async throws {
        let key = try PolicyFixtures.key(.es256)
        let header = headerTemplate.replacingOccurrences(of: "KID", with: key.signingKey.identifiers.libtrust)
        let token = try IndependentJOSE.sign(header: header, payload: payload, algorithm: "ES256", privateKeyPEM: key.privateKeyPEM)
        await expectPolicyError(.invalidToken) { try await TokenFixtures.verifier().verify(token, now: PolicyFixtures.now) }
    }

    @Test("TrustedKey always answers to the key's libtrust, RFC 7638 and 3.1 ids, plus any extra ids")
    func trustedKeyIDs() throws {
        let key = try PolicyFixtures.key(.es256).signingKey
        let trusted = TrustedKey(publicKey: key.publicKey, keyIDs: ["extra"])
        #expect(trusted.keyIDs == ["extra", key.identifiers.libtrust, key.identifiers.rfc7638, key.identifiers.registry31])
        #expect(TrustedKey(key).certificateDER == key.leafDER)
        #expect(TrustedKey(key).keyIDs == [key.identifiers.libtrust, key.identifiers.rfc7638, key.identifiers.registry31])
    }

    @Test("a verifier with no keys refuses everything")
    func noKeysRefuseEverything() async throws {
        let verifier = TokenVerifier(issuer: PolicyFixtures.issuer, audience: PolicyFixtures.audience, keys: [])
        for hint in [KeyHint.x5c, .kid(.v2_8)] {
            let token = try TokenFixtures.es256Token(hint: hint)
            await expectPolicyError(.invalidToken) { try await verifier.verify(token, now: PolicyFixtures.now) }
        }
    }
}
