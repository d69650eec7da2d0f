import Crypto
import Foundation
import Testing

@testable import Policy

/// Identity tokens of an OIDC issuer, signed here with a P-256 key, checked by `OIDCIssuer`.
@Suite("OIDC identity tokens")
struct OIDCIssuerTests {
    let key = P256.Signing.PrivateKey()
    let otherKey = P256.Signing.PrivateKey()
    let now = Date()
    let issuer = OIDCIssuer(
        issuer: "https://gitlab.example.com", audiences: ["portcullis"], account: try! ClaimTemplate("ci:${claims:project_path}"),
        labels: ["project_path": try! ClaimTemplate("${claims:project_path}"), "ref_protected": try! ClaimTemplate("${claims:ref_protected}"),
                 "groups": try! ClaimTemplate("${claims:groups}")])

    var trusted: [TrustedKey] { [TrustedKey(publicKey: try! PublicKeyMaterial(pem: key.publicKey.pemRepresentation), keyIDs: ["k1"])] }

    func claims(_ changes: [String: Any] = [:], removing: [String] = []) -> [String: Any] {
        var claims: [String: Any] = [
            "iss": "https://gitlab.example.com", "aud": "portcullis", "sub": "project_path:team-a/app:ref_type:branch:ref:main",
            "exp": Int(now.timeIntervalSince1970) + 300, "iat": Int(now.timeIntervalSince1970) - 5, "nbf": Int(now.timeIntervalSince1970) - 5,
            "project_path": "team-a/app", "ref_protected": "true", "groups": ["dev", "ops"],
        ]
        for (name, value) in changes { claims[name] = value }
        for name in removing { claims[name] = nil }
        return claims
    }

    func token(_ claims: [String: Any], header: [String: Any] = ["alg": "ES256", "kid": "k1", "typ": "JWT"], signer: P256.Signing.PrivateKey? = nil) throws -> UnverifiedToken {
        let head = Base64URL.encode(Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])))
        let body = Base64URL.encode(Array(try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])))
        let input = Array("\(head).\(body)".utf8)
        let signature = try (signer ?? key).signature(for: input).rawRepresentation
        return try UnverifiedToken("\(head).\(body).\(Base64URL.encode(Array(signature)))")
    }

    func refusal(_ token: UnverifiedToken, issuer: OIDCIssuer? = nil) async -> String? {
        do {
            _ = try await (issuer ?? self.issuer).identity(from: token, keys: trusted, now: now)
            return nil
        } catch let error as PolicyError {
            return error.code == .invalidToken ? error.message : "unexpected code \(error.code)"
        } catch {
            return "\(error)"
        }
    }

    @Test("a valid token gives the templated account, its claims as labels (a list claim as several values) and its expiry")
    func validToken() async throws {
        let (identity, expires) = try await issuer.identity(from: try token(claims()), keys: trusted, now: now)
        #expect(identity.account == "ci:team-a/app")
        #expect(identity.kind == .oidc)
        #expect(identity.labels["project_path"] == ["team-a/app"])
        #expect(identity.labels["ref_protected"] == ["true"])
        #expect(identity.labels["groups"] == ["dev", "ops"])
        #expect(Int(expires) == Int(now.timeIntervalSince1970) + 300)
    }

    @Test("aud as a list, and a token naming no kid verified by the issuer's keys that fit its alg")
    func audienceListAndNoKid() async throws {
        let identity = try await issuer.identity(from: try token(claims(["aud": ["other", "portcullis"]]), header: ["alg": "ES256"]), keys: trusted, now: now)
        #expect(identity.identity.account == "ci:team-a/app")
        #expect(await refusal(try token(claims(), header: ["alg": "ES256"], signer: otherKey))?.contains("signature does not verify") == true)
    }

    @Test("refused with the reason: alg none, HS256 with the issuer's key, a foreign kid, another key's signature")
    func headerAndSignatureRefusals() async throws {
        #expect(await refusal(try token(claims(), header: ["alg": "none", "kid": "k1"]))?.contains("never accepted") == true)
        #expect(await refusal(try token(claims(), header: ["alg": "HS256", "kid": "k1"]))?.contains("never accepted") == true)
        #expect(await refusal(try token(claims(), header: ["alg": "ES256", "kid": "someone-else"]))?.contains("names no trusted key") == true)
        #expect(await refusal(try token(claims(), signer: otherKey))?.contains("signature does not verify") == true)
        #expect(await refusal(try token(claims(), header: ["alg": "RS256", "kid": "k1"]))?.contains("does not fit") == true)
    }

    @Test("refused with the reason: another audience, another issuer, expired, not yet valid, issued in the future, no exp")
    func claimRefusals() async throws {
        #expect(await refusal(try token(claims(["aud": "someone-else"])))?.contains("aud") == true)
        #expect(await refusal(try token(claims(["iss": "https://evil.example.com"])))?.contains("iss") == true)
        #expect(await refusal(try token(claims(["exp": Int(now.timeIntervalSince1970) - 120])))?.contains("expired") == true)
        #expect(await refusal(try token(claims(["nbf": Int(now.timeIntervalSince1970) + 120])))?.contains("not valid before") == true)
        #expect(await refusal(try token(claims(["iat": Int(now.timeIntervalSince1970) + 120])))?.contains("future") == true)
        #expect(await refusal(try token(claims(removing: ["exp"])))?.contains("no exp") == true)
        // Within the leeway (60 s) an expired token still passes: clocks differ.
        #expect(await refusal(try token(claims(["exp": Int(now.timeIntervalSince1970) - 30]))) == nil)
    }

    @Test("a required claim must have exactly the required value; a missing account claim is refused")
    func requiredClaims() async throws {
        var strict = issuer
        strict.required = ["ref_protected": "true"]
        #expect(await refusal(try token(claims()), issuer: strict) == nil)
        #expect(await refusal(try token(claims(["ref_protected": "false"])), issuer: strict)?.contains("ref_protected") == true)
        #expect(await refusal(try token(claims(removing: ["ref_protected"])), issuer: strict)?.contains("missing") == true)
        #expect(await refusal(try token(claims(removing: ["project_path"])))?.contains("project_path is missing") == true)
        // A boolean claim is compared as its text.
        #expect(await refusal(try token(claims(["ref_protected": true])), issuer: strict) == nil)
    }

    @Test("claim templates reject unknown placeholders and expand literals around claims")
    func templates() throws {
        #expect(throws: PolicyError.self) { try ClaimTemplate("ci:${labels:x}") }
        #expect(throws: PolicyError.self) { try ClaimTemplate("ci:${claims:x") }
        #expect(try ClaimTemplate("ci:${claims:a}/${claims:b}").expand(["a": ["x"], "b": ["y"]]) == ["ci:x/y"])
        #expect(throws: PolicyError.self) { try ClaimTemplate("ci:${claims:a}").expand(["a": ["x", "y"]]) }
    }
}
