import Foundation
import Testing
import TestSupport

/// What clients see when the registry is down or does not trust Portcullis.
@Suite("registry failures seen through Portcullis")
struct UpstreamFailureTests {
    @Test("a stopped registry gives 503 with an OCI UNAVAILABLE body, and starting it again recovers without restarting Portcullis")
    func registryDownThenUp() async throws {
        let deployment = try await Deployment.start(users: ["alice": "alice-secret"], rules: "  - {account: \"*\", name: \"${account}/**\", actions: [\"*\"]}")
        defer { deployment.stop() }
        let before = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("alice")], path: "/v2/alice/app/tags/list")
        #expect(before.standardOutput == "404", "a repository that does not exist yet answers 404 from the registry: \(before)")

        deployment.stopRegistry()
        let down = try await deployment.curl(["-i", "-u", deployment.credentials("alice")], path: "/v2/alice/app/tags/list")
        #expect(down.standardOutput.hasPrefix("HTTP/1.1 503"), "\(down)")
        #expect(down.standardOutput.contains(#""code":"UNAVAILABLE""#), "\(down)")
        #expect(deployment.gateway.log.contains("level=error") && deployment.gateway.log.contains("registry unreachable"))

        try await deployment.restartRegistry()
        let after = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("alice")], path: "/v2/alice/app/tags/list")
        #expect(after.standardOutput == "404", "\(after)")
        #expect(deployment.gateway.isRunning)
    }

    @Test("a registry that trusts another certificate gives clients a 502 that names the token mismatch, and an error-level log line with its challenge, the key hint and key id, and the registry version")
    func registryDistrustingPortcullis() async throws {
        let deployment = try await Deployment.start(
            users: ["alice": "alice-secret"], rules: "  - {account: \"*\", name: \"${account}/**\", actions: [\"*\"]}",
            registryTrustsOtherKey: true)
        defer { deployment.stop() }
        let response = try await deployment.curl(["-i", "-u", deployment.credentials("alice")], path: "/v2/alice/app/tags/list")
        #expect(response.standardOutput.hasPrefix("HTTP/1.1 502"), "\(response)")
        #expect(response.standardOutput.contains("the registry rejected Portcullis's token"), "\(response)")
        let errorLine = deployment.gateway.log.split(separator: "\n").first { $0.contains("level=error") && $0.contains("rejected the token Portcullis minted") }
        let line = try #require(errorLine, "no error-level line in:\n\(deployment.gateway.log)")
        #expect(line.contains("registry_challenge=\"Bearer realm="))
        #expect(line.contains("key_hint=x5c"))
        #expect(line.contains("key_id=\"x5c leaf (rfc7638 ") && line.contains("registry_version=2.8"), "\(line)")
    }
}

/// Streaming: a blob far larger than Portcullis's memory passes through intact.
@Suite("streaming large blobs")
struct LargeBlobTests {
    @Test("a 1 GiB blob pushed and pulled through Portcullis keeps its digest while Portcullis stays under 100 MiB resident")
    func oneGiBBlobRoundTrip() async throws {
        let deployment = try await SharedDeployment.get()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("blob-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        _ = try await Command("sh", ["-c", "head -c 1073741824 /dev/urandom > '\(file)'"], timeout: .seconds(120)).runInBackground().checked()
        let digest = "sha256:" + String(try await Command("sha256sum", [file], timeout: .seconds(120)).runInBackground().checked().standardOutput.prefix(64))

        let start = try await deployment.curl(["-i", "-X", "POST", "-u", deployment.credentials("alice")], path: "/v2/alice/big/blobs/uploads/")
        #expect(start.standardOutput.hasPrefix("HTTP/1.1 202"), "\(start)")
        let locationLine = start.standardOutput.split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") }
        let location = try #require(locationLine.map { String($0.dropFirst("location:".count)).trimmingCharacters(in: .whitespaces) })
        #expect(location.hasPrefix(deployment.url + "/v2/alice/big/blobs/uploads/"), "Location must point at Portcullis: \(location)")

        let put = try await Command(
            "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("alice"), "-H", "Content-Type: application/octet-stream", "-T", file, location + "&digest=" + digest],
            timeout: .seconds(300)
        ).runInBackground()
        #expect(put.standardOutput == "201", "\(put)")

        let pulled = try await Command(
            "sh", ["-c", "curl -s -u '\(deployment.credentials("alice"))' '\(deployment.url)/v2/alice/big/blobs/\(digest)' | sha256sum"],
            timeout: .seconds(300)
        ).runInBackground().checked()
        #expect("sha256:" + pulled.standardOutput.prefix(64) == digest)

        let peak = try #require(deployment.gateway.peakResidentKiB)
        #expect(peak < 100 * 1024, "Portcullis peaked at \(peak) KiB resident")
    }
}
