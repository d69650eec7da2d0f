import Crypto
import Foundation
import Testing
import TestSupport

/// `users.oidc` end to end: a real OIDC provider (oidc-provider-mock) signs job tokens; skopeo
/// and curl use them through Portcullis against a real docker-registry 2.8.2.
@Suite("CI jobs with OIDC identity tokens", .serialized)
final class OIDCWorkloadTests {
    let directory: String
    let provider: OIDCProvider
    /// A second issuer whose tokens live three seconds, trusted with no leeway.
    let shortLived: OIDCProvider
    let deployment: Deployment

    init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-oidc-\(UUID().uuidString.prefix(8))").path
        provider = try await OIDCProvider.start(in: directory)
        shortLived = try await OIDCProvider.start(in: directory + "/short", tokenMaxAge: 3)
        deployment = try await Deployment.start(
            users: ["hilda": "hilda-pw"],
            rules: """
                  - {account: "ci:**", name: "${labels:project_path}/**", labels: {ref_protected: "true"}, actions: [pull, push, delete]}
                  - {account: "ci:**", name: "${labels:project_path}/**", actions: [pull, push]}
                """,
            usersConfiguration: """
                oidc:
                  - issuer: \(provider.issuer)
                    audiences: [portcullis]
                    discovery: true
                    account: "ci:${claims:project_path}"
                    labels: {project_path: "${claims:project_path}", ref_protected: "${claims:ref_protected}"}
                  - issuer: \(shortLived.issuer)
                    audiences: [portcullis]
                    jwks_url: \(shortLived.issuer)/jwks
                    account: "ci:${claims:project_path}"
                    labels: {project_path: "${claims:project_path}"}
                    leeway: 0
                """)
    }

    deinit {
        deployment.stop()
        provider.stop()
        shortLived.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func jobToken(project: String, protected: Bool, audience: String = "portcullis", from provider: OIDCProvider? = nil) async throws -> String {
        try await (provider ?? self.provider).idToken(
            subject: "job-\(project.replacingOccurrences(of: "/", with: "-"))-\(protected)",
            claims: ["project_path": project, "ref_protected": protected ? "true" : "false"], audience: audience)
    }

    func status(_ arguments: [String], _ path: String) async throws -> Int {
        let result = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}"] + arguments, path: path)
        return Int(result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    func grantedActions(_ credentials: String, scope: String) async throws -> Set<String> {
        let answer = try await deployment.curl(["-u", credentials], path: "/token?service=portcullis&scope=\(scope)")
        guard let object = try? JSONSerialization.jsonObject(with: Data(answer.standardOutput.utf8)) as? [String: Any],
            let token = object["token"] as? String, let payload = decodeJWTPayload(token), let access = payload["access"] as? [[String: Any]]
        else { return [] }
        return Set(access.flatMap { $0["actions"] as? [String] ?? [] })
    }

    @Test("skopeo pushes with a job token into its own project's repositories and is refused in another project's")
    func skopeoPushWithJobToken() async throws {
        let token = try await jobToken(project: "team-a/app", protected: true)
        let (layout, _) = try writeImage(named: "oidc", content: "pushed by a CI job")
        defer { try? FileManager.default.removeItem(atPath: layout) }
        let own = try await deployment.push(layout, credentials: "ci:\(token)", to: "team-a/app/image:v1")
        #expect(own.succeeded, "\(own)")
        let other = try await deployment.push(layout, credentials: "ci:\(token)", to: "team-b/app/image:v1")
        #expect(!other.succeeded, "a team-a job pushed into team-b: \(other)")
        #expect(!deployment.gateway.log.contains(token), "the job token reached the log")
        #expect(!deployment.auditLog.contains(token))
    }

    @Test("delete is granted only to jobs of protected refs, and a token exchange with curl gets a token that deletes a manifest")
    func deleteOnlyOnProtectedRefs() async throws {
        let protected = try await jobToken(project: "team-a/app", protected: true)
        let unprotected = try await jobToken(project: "team-a/app", protected: false)
        let scope = "repository:team-a/app/image:pull,push,delete"
        #expect(try await grantedActions("ci:\(protected)", scope: scope) == ["pull", "push", "delete"])
        #expect(try await grantedActions("ci:\(unprotected)", scope: scope) == ["pull", "push"])

        let (layout, image) = try writeImage(named: "cleanup", content: "to be cleaned up")
        defer { try? FileManager.default.removeItem(atPath: layout) }
        #expect(try await deployment.push(layout, credentials: "ci:\(protected)", to: "team-a/app/image:old").succeeded)
        // The seed's clean-up job: exchange the job token for a registry token that may delete.
        let exchange = try await deployment.curl(
            ["-X", "POST", "--data-urlencode", "grant_type=urn:ietf:params:oauth:grant-type:token-exchange", "--data-urlencode", "subject_token=\(protected)",
             "--data-urlencode", "subject_token_type=urn:ietf:params:oauth:token-type:id_token", "--data-urlencode", "service=portcullis",
             "--data-urlencode", "scope=\(scope)"], path: "/token")
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(exchange.standardOutput.utf8)) as? [String: Any], "\(exchange)")
        #expect(answer["issued_token_type"] as? String == "urn:ietf:params:oauth:token-type:access_token")
        let registryToken = try #require(answer["access_token"] as? String, "\(answer)")
        #expect(try await status(["-X", "DELETE", "-H", "Authorization: Bearer \(registryToken)"], "/v2/team-a/app/image/manifests/\(image.manifestDigest)") == 202)
        #expect(try await status(["-I", "-u", "ci:\(protected)"], "/v2/team-a/app/image/manifests/old") == 404)
    }

    @Test("a token for another audience, from an unknown issuer, or not a token at all is refused with 401 and the reason logged")
    func refusals() async throws {
        let wrongAudience = try await jobToken(project: "team-a/app", protected: true, audience: "someone-else")
        #expect(try await status(["-u", "ci:\(wrongAudience)"], "/v2/team-a/app/image/tags/list") == 401)
        let strangerDirectory = directory + "/stranger"
        let stranger = try await OIDCProvider.start(in: strangerDirectory)
        defer { stranger.stop() }
        let foreign = try await jobToken(project: "team-a/app", protected: true, from: stranger)
        #expect(try await status(["-u", "ci:\(foreign)"], "/v2/team-a/app/image/tags/list") == 401)
        #expect(try await status(["-u", "ci:eyJub3QiOiJhIHRva2VuIn0.e30.AAAA"], "/v2/team-a/app/image/tags/list") == 401)
        let exchange = try await deployment.curl(
            ["-X", "POST", "-d", "grant_type=urn:ietf:params:oauth:grant-type:token-exchange", "-d", "subject_token=\(foreign)",
             "-d", "subject_token_type=urn:ietf:params:oauth:token-type:jwt", "-d", "service=portcullis", "-w", "\n%{http_code}"], path: "/token")
        #expect(exchange.standardOutput.hasSuffix("401"), "\(exchange)")
        let log = deployment.gateway.log
        #expect(log.contains("identity token refused") && log.contains("contains none of"), "the audience refusal is logged with its reason")
    }

    @Test("forged tokens are refused with the reason logged: alg none, HS256 keyed with the issuer's JWKS, and an expired token")
    func forgedAndExpiredTokens() async throws {
        let genuine = try await jobToken(project: "team-a/app", protected: true)
        let parts = genuine.split(separator: ".").map(String.init)
        func encode(_ text: String) -> String {
            Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        let none = encode(#"{"alg":"none","typ":"JWT"}"#) + "." + parts[1] + "."
        #expect(try await status(["-u", "ci:\(none)"], "/v2/team-a/app/image/tags/list") == 401)
        // The classic confusion: HMAC with the issuer's public key (its JWKS) as the secret.
        let hsHeader = encode(#"{"alg":"HS256","typ":"JWT"}"#) + "." + parts[1]
        let secret = SymmetricKey(data: Data(try await provider.jwks().utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(hsHeader.utf8), using: secret)
        let hs256 = hsHeader + "." + Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        #expect(try await status(["-u", "ci:\(hs256)"], "/v2/team-a/app/image/tags/list") == 401)
        let shortToken = try await shortLived.idToken(subject: "job-short", claims: ["project_path": "team-a/app"])
        #expect(try await status(["-u", "short:\(shortToken)"], "/v2/team-a/app/image/tags/list") != 401, "a fresh token of the second issuer")
        try await Task.sleep(for: .seconds(4))
        #expect(try await status(["-u", "late:\(shortToken)"], "/v2/team-a/app/image/tags/list") == 401, "an expired token is accepted")
        let log = deployment.gateway.log
        #expect(log.contains("alg none is never accepted"), "\(log.suffix(3000))")
        #expect(log.contains("alg HS256 is never accepted"))
        #expect(log.contains("token expired at"))
    }

    @Test("after the provider rotates its key, new tokens are accepted (keys fetched again) and tokens of the old key are refused")
    func keyRotation() async throws {
        let before = try await jobToken(project: "team-a/app", protected: true)
        #expect(try await status(["-u", "ci:\(before)"], "/v2/team-a/app/image/tags/list") != 401)
        try await provider.restart()
        // Keys are fetched again at most every 5 seconds.
        try await Task.sleep(for: .seconds(5))
        let after = try await jobToken(project: "team-a/app", protected: true)
        #expect(try await status(["-u", "ci:\(after)"], "/v2/team-a/app/image/tags/list") != 401, "a token of the new key is refused")
        // A different Basic user name, so the cached login of the old token is not used.
        #expect(try await status(["-u", "job:\(before)"], "/v2/team-a/app/image/tags/list") == 401, "a token of the rotated-out key is accepted")
    }
}
