import Foundation
import Testing
import TestSupport

/// The registry browser in a real headless Chromium (Debian's chromium and chromium-driver,
/// driven by Python selenium from `Browser/ui_walkthrough.py`), against a real Portcullis and
/// registry with images pushed by skopeo.
@Suite("Registry browser in Chromium")
struct RegistryBrowserInChromiumTests {
    @Test("alice logs in, sees her and the public repositories only, opens one, sees two tags under one digest with pull lines, deletes it after confirming, logs out; bob cannot open it by URL; a wrong password errs; a forged cookie goes to the login page")
    func walkthrough() async throws {
        let deployment = try await Deployment.start(
            users: ["alice": "alice-secret", "bob": "bob-secret", "admin": "admin-secret"],
            rules: """
                  - {account: admin, name: "**", actions: ["*"]}
                  - {account: "*", name: "public/**", actions: [pull]}
                  - {account: "*", name: "${account}/**", actions: [pull, push, delete]}
                """,
            extraConfiguration: "ui: {enabled: true}\nretention: {push_times: push-times.log}")
        defer { deployment.stop() }
        let (layout, image) = try writeImage(named: "chromium", content: "an image to look at")
        defer { try? FileManager.default.removeItem(atPath: layout) }
        for (account, reference) in [("alice", "alice/app:v1"), ("alice", "alice/app:latest"), ("bob", "bob/secret:v1"), ("admin", "public/base:v1")] {
            _ = try await deployment.push(layout, credentials: deployment.credentials(account), to: reference).checked()
        }
        // Reproducible builds write 0001-01-01 or 1970-01-01: shown by their recorded push time.
        for (tag, created) in [("dated", "2024-05-01T12:00:00Z"), ("zero", "0001-01-01T00:00:00Z"), ("repro", "1970-01-01T00:00:00Z"), ("nocreated", nil)] {
            let timed = FileManager.default.temporaryDirectory.appendingPathComponent("oci-chromium-\(tag)-\(UUID().uuidString.prefix(8))").path
            defer { try? FileManager.default.removeItem(atPath: timed) }
            _ = try OCIImageLayout.write(to: timed, tag: "v1", layers: [["own.txt": Data("timed \(tag)\n".utf8)]], created: created, label: tag)
            _ = try await deployment.push(timed, credentials: deployment.credentials("alice"), to: "alice/times:\(tag)").checked()
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Browser/ui_walkthrough.py").path
        let screenshot = deployment.directory + "/ui-repository.png"
        let run = try await Command(
            "python3", [script, deployment.url, screenshot, "alice-secret", "bob-secret"], timeout: .seconds(180)
        ).runInBackground()
        try #require(run.succeeded, "\(run)")
        let observed = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any], "\(run)")

        #expect(observed["wrong_password_error"] as? String == "Wrong user name or password.")
        #expect((observed["wrong_password_url"] as? String)?.hasSuffix("/ui/login") == true)
        #expect((observed["after_login_url"] as? String)?.hasSuffix("/ui/") == true)
        #expect(observed["repositories"] as? [String] == ["alice/app", "alice/times", "public/base"], "\(observed)")
        #expect(observed["filter_value"] as? String == "<b>bold</b>" && observed["bold_elements"] as? Int == 0, "HTML in a filter was rendered: \(observed)")
        #expect(observed["digest_sections"] as? Int == 1)
        #expect(observed["tags_in_first_section"] as? [String] == ["latest", "v1"])
        let pulls = observed["pull_lines"] as? [String] ?? []
        #expect(pulls.contains("docker pull 127.0.0.1:\(deployment.gatewayPort)/alice/app:v1"))
        #expect(pulls.contains("docker pull 127.0.0.1:\(deployment.gatewayPort)/alice/app@\(image.manifestDigest)"))
        #expect(observed["pull_line_selectable"] as? String == "all", "a click does not select the whole pull line")
        let times = observed["times"] as? [String: String] ?? [:]
        #expect(times["dated"] == "created 2024-05-01T12:00:00Z", "\(observed)")
        for tag in ["zero", "repro", "nocreated"] {
            #expect(times[tag]?.wholeMatch(of: #/pushed 20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z/#) != nil, "\(tag): \(observed)")
        }
        #expect((observed["confirm_title"] as? String)?.hasPrefix("Delete a manifest of alice/app") == true)
        #expect((observed["after_delete_url"] as? String)?.hasSuffix("/ui/r/alice/app") == true)
        #expect(observed["digest_sections_after_delete"] as? Int == 0)
        let registry = try await deployment.curl(
            ["-o", "/dev/null", "-w", "%{http_code}", "-I", "-u", deployment.credentials("alice")], path: "/v2/alice/app/manifests/\(image.manifestDigest)")
        #expect(registry.standardOutput == "404", "the registry still has the deleted manifest")
        #expect((observed["after_logout_url"] as? String)?.hasSuffix("/ui/login") == true)
        #expect(observed["bob_on_alice_title"] as? String == "Not found" && observed["bob_on_alice_has_tags"] as? Int == 0, "\(observed)")
        #expect((observed["forged_cookie_url"] as? String)?.hasSuffix("/ui/login") == true)
        // The screenshot of the repository page (docs/ holds a copy for the README).
        let png = try #require(FileManager.default.contents(atPath: screenshot))
        #expect(png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]) && png.count > 5_000, "no screenshot of the repository page")
        if let keep = ProcessInfo.processInfo.environment["PORTCULLIS_UI_SCREENSHOT"] { try png.write(to: URL(fileURLWithPath: keep)) }
    }
}
