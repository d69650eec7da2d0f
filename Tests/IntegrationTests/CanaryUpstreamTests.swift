import Foundation
import Testing
import TestSupport

/// Two real registries on one storage directory behind Portcullis (`upstreams:`), one trusting
/// Portcullis's key by kid and one by x5c: a registry 2-to-3 canary in miniature.
@Suite("Several upstreams: repository-sticky canary and fallback", .serialized)
struct CanaryUpstreamTests {
    func requests(for repository: String, in log: String) -> Int {
        log.split(separator: "\n").filter { $0.contains("/v2/\(repository)/") }.count
    }

    @Test("repositories pinned to the canary are served by it only, the others by the primary only, each with its own token format")
    func pinnedRepositoriesStayOnTheirRegistry() async throws {
        let deployment = try await CanaryDeployment.start(canaryRouting: #"repositories: ["team-a/**"]"#)
        defer { deployment.stop() }
        let (layout, image) = try writeImage(named: "canary", content: "one image, two registries")
        defer { try? FileManager.default.removeItem(atPath: layout) }
        for repository in ["team-a/app", "team-b/app"] {
            let push = try await deployment.skopeo([
                "copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", deployment.credentials, "oci:\(layout):v1",
                "docker://\(deployment.host)/\(repository):v1",
            ])
            #expect(push.succeeded, "\(push)")
            let pull = try await deployment.skopeo(["inspect", "--raw", "--tls-verify=false", "--creds", deployment.credentials, "docker://\(deployment.host)/\(repository):v1"])
            #expect(pull.succeeded && pull.standardOutput.contains(image.configDigest), "\(pull)")
        }
        let primary = deployment.registryLog("primary")
        let canary = deployment.registryLog("canary")
        #expect(requests(for: "team-a/app", in: canary) > 0, "the canary never saw team-a/app")
        #expect(requests(for: "team-a/app", in: primary) == 0, "the primary served team-a/app, pinned to the canary")
        #expect(requests(for: "team-b/app", in: primary) > 0)
        #expect(requests(for: "team-b/app", in: canary) == 0, "the canary served team-b/app")
        #expect(deployment.gatewayLog.contains("upstream=canary") && deployment.gatewayLog.contains("upstream=primary"), "request lines name the upstream")
        let metrics = try await deployment.curl([], path: "/metrics")
        #expect(metrics.standardOutput.contains("portcullis_upstream_requests_total{upstream=\"canary\"}"), "\(metrics.standardOutput.suffix(2000))")
        let doctor = try await Command(try portcullisBinary(), ["doctor", "--config", deployment.configurationPath]).runInBackground()
        #expect(doctor.succeeded, "\(doctor)")
        #expect(doctor.standardOutput.contains("upstream primary (primary, registry 2.8, key hint kid") && doctor.standardOutput.contains("upstream canary (canary, registry 2.8, key hint x5c"), "\(doctor)")
        // The canary trusts only its own key: its rootcertbundle is not Portcullis's token certificate.
        let canaryBundle = FileManager.default.contents(atPath: deployment.directory + "/canary/trust/rootcertbundle.pem")
        #expect(canaryBundle != nil && canaryBundle == FileManager.default.contents(atPath: deployment.directory + "/canary-keys/token.crt"))
        #expect(canaryBundle != FileManager.default.contents(atPath: deployment.directory + "/keys/token.crt"))
    }

    @Test("with the canary killed its repositories are served by the primary within the readiness interval and no pull fails after that; once it is back, traffic returns to it")
    func fallbackToThePrimaryAndBack() async throws {
        let deployment = try await CanaryDeployment.start(canaryRouting: #"repositories: ["team-a/**"]"#)
        defer { deployment.stop() }
        let (layout, _) = try writeImage(named: "fallback", content: "served by whoever is up")
        defer { try? FileManager.default.removeItem(atPath: layout) }
        let push = try await deployment.skopeo([
            "copy", "--dest-tls-verify=false", "--dest-creds", deployment.credentials, "oci:\(layout):v1", "docker://\(deployment.host)/team-a/app:v1",
        ])
        #expect(push.succeeded, "\(push)")
        deployment.killRegistry("canary")
        // Readiness runs every second; wait for the change it logs rather than a fixed time.
        _ = await text({ deployment.gatewayLog }, once: { $0.contains("upstream out of rotation") }, timeout: .seconds(30))
        for _ in 0..<5 {
            let pull = try await deployment.skopeo(["inspect", "--raw", "--tls-verify=false", "--creds", deployment.credentials, "docker://\(deployment.host)/team-a/app:v1"])
            #expect(pull.succeeded, "a pull failed after the canary left the rotation: \(pull)")
        }
        #expect(requests(for: "team-a/app", in: deployment.registryLog("primary")) > 0, "the primary did not take over team-a/app")
        let log = deployment.gatewayLog
        #expect(log.contains("upstream out of rotation") && log.contains("upstream_name=canary") && log.contains("key_hint=x5c"), "\(log.suffix(3000))")

        try await deployment.startRegistry("canary")
        _ = await text({ deployment.gatewayLog }, once: { $0.contains("upstream back in rotation") }, timeout: .seconds(30))
        let before = requests(for: "team-a/app", in: deployment.registryLog("canary"))
        let pull = try await deployment.skopeo(["inspect", "--raw", "--tls-verify=false", "--creds", deployment.credentials, "docker://\(deployment.host)/team-a/app:v1"])
        #expect(pull.succeeded, "\(pull)")
        #expect(requests(for: "team-a/app", in: deployment.registryLog("canary")) > before, "traffic did not return to the canary")
        #expect(deployment.gatewayLog.contains("upstream back in rotation"))
    }

    @Test("an upload started on the canary finishes after a reload moved its repository to the primary (one storage, one http.secret)")
    func uploadSpansAShareChange() async throws {
        let deployment = try await CanaryDeployment.start(canaryRouting: #"repositories: ["moving/**"]"#)
        defer { deployment.stop() }
        let start = try await deployment.curl(["-i", "-X", "POST", "-u", deployment.credentials], path: "/v2/moving/app/blobs/uploads/")
        let location = try #require(
            start.standardOutput.split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") }?.dropFirst("location:".count)
                .trimmingCharacters(in: .whitespaces), "\(start)")
        #expect(requests(for: "moving/app", in: deployment.registryLog("canary")) > 0)
        let first = Data(repeating: 0x61, count: 1024)
        let second = Data(repeating: 0x62, count: 1024)
        let chunk1 = deployment.directory + "/chunk1"
        let chunk2 = deployment.directory + "/chunk2"
        try first.write(to: URL(fileURLWithPath: chunk1))
        try second.write(to: URL(fileURLWithPath: chunk2))
        let path = location.hasPrefix("http") ? String(location.drop { $0 != "/" }.dropFirst(2).drop { $0 != "/" }) : location
        let patch = try await deployment.curl(
            ["-i", "-X", "PATCH", "-u", deployment.credentials, "-H", "Content-Type: application/octet-stream", "--data-binary", "@\(chunk1)"], path: path)
        #expect(patch.standardOutput.hasPrefix("HTTP/1.1 202"), "\(patch)")
        let next = try #require(
            patch.standardOutput.split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") }?.dropFirst("location:".count)
                .trimmingCharacters(in: .whitespaces))
        // The share changes: the repository now belongs to the primary (hot reload).
        let canaryBefore = requests(for: "moving/app", in: deployment.registryLog("canary"))
        try deployment.writeConfiguration(canaryRouting: #"repositories: ["elsewhere/**"]"#)
        _ = await text({ deployment.gatewayLog }, once: { $0.contains("configuration reloaded") }, timeout: .seconds(10))
        var whole = first
        whole.append(second)
        let digest = "sha256:" + (try OCIImageLayout.sha256Hex(whole))
        let nextPath = next.hasPrefix("http") ? String(next.drop { $0 != "/" }.dropFirst(2).drop { $0 != "/" }) : next
        let separator = nextPath.contains("?") ? "&" : "?"
        let put = try await deployment.curl(
            ["-i", "-X", "PUT", "-u", deployment.credentials, "-H", "Content-Type: application/octet-stream", "--data-binary", "@\(chunk2)"],
            path: nextPath + separator + "digest=\(digest)")
        #expect(put.standardOutput.hasPrefix("HTTP/1.1 201"), "\(put)")
        #expect(requests(for: "moving/app", in: deployment.registryLog("canary")) == canaryBefore, "the canary got requests after the reload")
        let head = try await deployment.curl(["-I", "-u", deployment.credentials, "-w", "%{http_code}", "-o", "/dev/null"], path: "/v2/moving/app/blobs/\(digest)")
        #expect(head.standardOutput == "200", "\(head)")
    }
}
