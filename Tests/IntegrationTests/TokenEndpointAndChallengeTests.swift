import Foundation
import Testing
import TestSupport

/// The token endpoint's refusals and the proxy's challenge, byte for byte as clients read them,
/// and the request-header rules of the forwarding (checked through what the registry answers).
@Suite("token endpoint refusals, challenges and forwarded headers")
struct TokenEndpointAndChallengeTests {
    /// Splits `curl -i` output into status, lower-cased header lines and body.
    static func split(_ output: String) -> (status: Int, headers: [String], body: String) {
        // curl -i prints a 100 Continue block first when there is one; the last head counts.
        let blocks = output.components(separatedBy: "\r\n\r\n")
        var index = 0
        while index + 1 < blocks.count, blocks[index + 1].hasPrefix("HTTP/") { index += 1 }
        let lines = blocks[index].components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, lines.dropFirst().map { $0.lowercased() }, blocks.dropFirst(index + 1).joined(separator: "\r\n\r\n"))
    }

    @Test("wrong credentials on /token get 401 with a Basic challenge and a JSON error; a malformed scope gets 400 naming it; a foreign service or a mismatched account is refused")
    func tokenEndpointRefusals() async throws {
        let deployment = try await SharedDeployment.get()

        let wrong = Self.split(try await deployment.curl(["-i", "-u", "alice:not-the-password"], path: "/token?service=portcullis&scope=repository:alice/app:pull").standardOutput)
        #expect(wrong.status == 401)
        #expect(wrong.headers.contains("www-authenticate: basic realm=\"\(deployment.url)/token\""), "\(wrong.headers)")
        let wrongBody = try JSONSerialization.jsonObject(with: Data(wrong.body.utf8)) as? [String: Any]
        let wrongErrors = try #require(wrongBody?["errors"] as? [[String: Any]], "\(wrong.body)")
        #expect(wrongErrors.first?["code"] as? String == "UNAUTHORIZED")
        #expect(!wrong.body.contains("not-the-password"))

        let malformed = Self.split(try await deployment.curl(["-i", "-u", deployment.credentials("alice")], path: "/token?service=portcullis&scope=repository:Alice/App:pull").standardOutput)
        #expect(malformed.status == 400)
        #expect(malformed.body.contains("Alice/App"), "the error must name the bad scope: \(malformed.body)")

        let foreign = Self.split(try await deployment.curl(["-i", "-u", deployment.credentials("alice")], path: "/token?service=elsewhere&scope=repository:alice/app:pull").standardOutput)
        #expect(foreign.status == 400)
        #expect(foreign.body.contains("elsewhere") && foreign.body.contains("portcullis"), "\(foreign.body)")

        let mismatched = Self.split(try await deployment.curl(["-i", "-u", deployment.credentials("alice")], path: "/token?service=portcullis&account=bob&scope=repository:bob/app:pull").standardOutput)
        #expect(mismatched.status == 401)
        #expect(mismatched.body.contains("bob") && mismatched.body.contains("alice"), "\(mismatched.body)")

        // The grant is requested ∩ policy: asking for bob's repository is not an error, the token carries less.
        let granted = try await deployment.curl(["-u", deployment.credentials("alice")], path: "/token?service=portcullis&scope=repository:alice/app:pull&scope=repository:bob/app:pull")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(granted.standardOutput.utf8)) as? [String: Any], "\(granted)")
        let issuedAt = try #require(json["issued_at"] as? String)
        let issued = try #require(ISO8601DateFormatter().date(from: issuedAt.replacingOccurrences(of: #"\.\d+"#, with: "", options: .regularExpression)), "\(issuedAt)")
        #expect(abs(issued.timeIntervalSinceNow) < 300)
        let token = try #require(json["token"] as? String)
        let payload = try #require(PolicyFixtures.bytes(base64URL: token.split(separator: ".")[1]))
        let claims = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
        let access = try #require(claims["access"] as? [[String: Any]])
        #expect(access.map { $0["name"] as? String } == ["alice/app"], "\(access)")
    }

    @Test("/v2/ without credentials, with a token lacking the scope, and by HEAD: 401, a Bearer challenge naming realm, service and scope, the API version header, and an OCI error body (none for HEAD)")
    func challenges() async throws {
        let deployment = try await SharedDeployment.get()
        let realm = "\(deployment.url)/token"

        let anonymous = Self.split(try await deployment.curl(["-i"], path: "/v2/alice/app/tags/list").standardOutput)
        #expect(anonymous.status == 401)
        #expect(anonymous.headers.contains(#"www-authenticate: bearer realm="\#(realm)",service="portcullis",scope="repository:alice/app:pull""#), "\(anonymous.headers)")
        #expect(anonymous.headers.contains("docker-distribution-api-version: registry/2.0"))
        let body = try JSONSerialization.jsonObject(with: Data(anonymous.body.utf8)) as? [String: Any]
        #expect((body?["errors"] as? [[String: Any]])?.first?["code"] as? String == "UNAUTHORIZED", "\(anonymous.body)")

        let head = Self.split(try await deployment.curl(["-i", "-I"], path: "/v2/alice/app/manifests/v1").standardOutput)
        #expect(head.status == 401)
        #expect(head.headers.contains(#"www-authenticate: bearer realm="\#(realm)",service="portcullis",scope="repository:alice/app:pull""#), "\(head.headers)")
        #expect(head.headers.contains("docker-distribution-api-version: registry/2.0"))
        #expect(head.body.isEmpty, "HEAD got a body: \(head.body)")

        let tokenResponse = try await deployment.curl(["-u", deployment.credentials("alice")], path: "/token?service=portcullis&scope=repository:alice/app:pull")
        let token = try #require((try JSONSerialization.jsonObject(with: Data(tokenResponse.standardOutput.utf8)) as? [String: Any])?["token"] as? String)
        let push = Self.split(try await deployment.curl(["-i", "-X", "POST", "-H", "Authorization: Bearer \(token)"], path: "/v2/alice/app/blobs/uploads/").standardOutput)
        #expect(push.status == 401)
        #expect(push.headers.contains(#"www-authenticate: bearer realm="\#(realm)",service="portcullis",scope="repository:alice/app:pull,push",error="insufficient_scope""#), "\(push.headers)")
    }

    @Test("client-sent X-Forwarded-*/Forwarded never steer the registry's Location; repeated Accept headers reach it as sent; a Range GET passes through as 206")
    func forwardedHeaders() async throws {
        let deployment = try await SharedDeployment.get()
        let (layout, image) = try writeImage(named: "headers", content: "forwarded headers")
        let push = try await deployment.push(layout, credentials: deployment.credentials("alice"), to: "alice/headers:v1")
        #expect(push.succeeded, "\(push)")

        let spoofed = Self.split(try await deployment.curl([
            "-i", "-X", "POST", "-u", deployment.credentials("alice"),
            "-H", "X-Forwarded-Host: evil.example", "-H", "X-Forwarded-Proto: https", "-H", "Forwarded: host=evil.example;proto=https",
        ], path: "/v2/alice/headers/blobs/uploads/").standardOutput)
        #expect(spoofed.status == 202)
        let location = try #require(spoofed.headers.first { $0.hasPrefix("location: ") }, "\(spoofed.headers)")
        #expect(location.hasPrefix("location: \(deployment.url)/v2/alice/headers/blobs/uploads/"), "\(location)")
        #expect(!location.contains("evil.example"))

        // Two Accept headers, the second naming the manifest's media type: merged into one the
        // registry would read only the first and answer a schema it does not have.
        let accepted = Self.split(try await deployment.curl([
            "-i", "-I", "-u", deployment.credentials("alice"),
            "-H", "Accept: application/vnd.docker.distribution.manifest.v2+json",
            "-H", "Accept: application/vnd.oci.image.manifest.v1+json",
        ], path: "/v2/alice/headers/manifests/v1").standardOutput)
        #expect(accepted.status == 200, "\(accepted)")
        #expect(accepted.headers.contains("docker-content-digest: \(image.manifestDigest)"), "\(accepted.headers)")

        let layer = try #require(image.layerDigests.first)
        let range = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code} %{size_download}", "-r", "0-9", "-u", deployment.credentials("alice")], path: "/v2/alice/headers/blobs/\(layer)")
        #expect(range.standardOutput == "206 10", "\(range)")
    }
}
