import Foundation
import Policy
import Testing
import TestSupport

/// `portcullis prune` and tags-of-digest (`tags/list?digest=`, `portcullis tags`) against the
/// real registry 2.8.2, with images pushed by skopeo.
@Suite("retention: prune through policy, tags of a digest")
struct RetentionTests {
    static let users = ["admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"]
    static let rules = """
          - {account: admin, name: "**", actions: ["*"]}
          - {account: admin, type: registry, name: catalog, actions: ["*"]}
          - {account: portcullis-prune, name: "prune/**", actions: [pull, delete]}
          - {account: prune-reader, name: "prune/**", actions: [pull]}
          - {account: "*", name: "${account}/**", actions: [pull, push, delete]}
        """

    /// The deployment, the `portcullis-prune` robot's secret, and the twelve image layouts.
    struct Fixture: Sendable {
        var deployment: Deployment
        var robotSecret: String
        /// `v1`…`v12`: layout path and image; `v12` is the newest, `v(n)` was created `(12 - n) * 10` days and an hour ago.
        var images: [String: (path: String, image: OCIImageLayout.Image)]
    }

    static let setup = Task { () throws -> Fixture in
        let deployment = try await Deployment.start(users: users, rules: rules, extraConfiguration: "retention:\n  push_times: push-times.log")
        let created = try GatewayUser.portcullis(["robot", "create", "portcullis-prune", "--config", deployment.configurationPath, "--expires", "1d"])
            .run().checked()
        let secret = created.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try await GatewayUser.portcullis(["robot", "create", "prune-reader", "--config", deployment.configurationPath, "--expires", "1d"]).runInBackground().checked()

        // Every image shares its base layer; each has one layer of its own.
        let base = Data((0..<8192).map { UInt8(($0 * 31) & 0xFF) })
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        let now = Date()
        var images: [String: (path: String, image: OCIImageLayout.Image)] = [:]
        for number in 1...12 {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("oci-prune-v\(number)-\(UUID().uuidString.prefix(8))").path
            let createdAt = now.addingTimeInterval(-Double(12 - number) * 10 * 86_400 - 3600)
            let image = try OCIImageLayout.write(
                to: path, tag: "v\(number)", layers: [["base.bin": base], ["own.txt": Data("image \(number)\n".utf8)]],
                created: formatter.string(from: createdAt), label: "v\(number)")
            images["v\(number)"] = (path, image)
        }
        return Fixture(deployment: deployment, robotSecret: secret, images: images)
    }

    // MARK: - Helpers

    /// Pushes `v1`…`v12` to `repository`, plus `stable` pointing at `v3`'s digest, as admin.
    func pushTwelve(_ fixture: Fixture, to repository: String) async throws {
        var pushes = (1...12).map { ("v\($0)", "v\($0)") } + [("v3", "stable")]
        // skopeo per image, three at a time after the first. The first alone: it uploads the base
        // layer every image shares, and registry 2.8's filesystem driver writes the repository's
        // link to a blob in place (truncate, then write), so a HEAD of that blob by a push beside
        // it can read an empty link and answer 500 (later distribution writes a temporary file and
        // renames it). Once the link exists, the others only HEAD the base layer.
        var first = true
        while !pushes.isEmpty {
            let batch = pushes.prefix(first ? 1 : 3)
            first = false
            pushes.removeFirst(batch.count)
            try await withThrowingTaskGroup(of: CommandResult.self) { group in
                for (image, tag) in batch {
                    let command = skopeoCopy(fixture, image: image, as: "admin", to: "\(repository):\(tag)")
                    group.addTask { try await command.runInBackground() }
                }
                for try await result in group { try result.checked() }
            }
        }
    }

    func skopeoCopy(_ fixture: Fixture, image: String, as account: String, to reference: String) -> Command {
        Command(
            "skopeo",
            [
                "copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", fixture.deployment.credentials(account),
                "oci:\(fixture.images[image]!.path):\(image)", "docker://\(fixture.deployment.host)/\(reference)",
            ], timeout: .seconds(120))
    }

    /// The tags the registry lists for `repository`, asked through Portcullis as admin.
    func tags(_ fixture: Fixture, _ repository: String) async throws -> Set<String> {
        let result = try await fixture.deployment.curl(["-u", fixture.deployment.credentials("admin")], path: "/v2/\(repository)/tags/list").checked()
        let object = try JSONSerialization.jsonObject(with: result.standardOutputData) as? [String: Any]
        return Set(object?["tags"] as? [String] ?? [])
    }

    func prune(_ fixture: Fixture, _ arguments: [String]) async throws -> CommandResult {
        try await Command(try portcullisBinary(), ["prune", "--config", fixture.deployment.configurationPath] + arguments, timeout: .seconds(60)).runInBackground()
    }

    func versions(_ numbers: ClosedRange<Int>) -> Set<String> { Set(numbers.map { "v\($0)" }) }

    /// Pushes, as admin with skopeo, an image of one layer of its own whose config has `created`
    /// (none when `nil`) to `repository:tag`; returns its manifest digest.
    func pushOwnImage(_ fixture: Fixture, to repository: String, tag: String, created: String?, label: String) async throws -> String {
        let layout = FileManager.default.temporaryDirectory.appendingPathComponent("oci-\(label)-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: layout) }
        let image = try OCIImageLayout.write(to: layout, tag: tag, layers: [["own.txt": Data("\(label)\n".utf8)]], created: created, label: label)
        let push = try await Command("skopeo", [
            "copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", fixture.deployment.credentials("admin"),
            "oci:\(layout):\(tag)", "docker://\(fixture.deployment.host)/\(repository):\(tag)",
        ], timeout: .seconds(120)).runInBackground()
        #expect(push.succeeded, "\(push)")
        return image.manifestDigest
    }

    /// The JSON audit lines of a prune's standard output.
    func auditLines(_ result: CommandResult) throws -> [[String: Any]] {
        try result.standardOutput.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    /// `-w "\n%{http_code}"` output split into body and status.
    func split(_ result: CommandResult) -> (body: [String: Any], status: String) {
        let text = result.standardOutput
        let newline = text.lastIndex(of: "\n") ?? text.endIndex
        let body = (try? JSONSerialization.jsonObject(with: Data(text[..<newline].utf8)) as? [String: Any]) ?? [:]
        return (body, newline < text.endIndex ? String(text[text.index(after: newline)...]) : "")
    }

    // MARK: - Prune

    @Test("the dry run (default and --dry-run) changes nothing; --keep-last 3 --exclude stable then keeps v10-v12 and the digest stable shares with v3, and audits each deletion")
    func keepLastWithExcludeAndDryRun() async throws {
        let fixture = try await Self.setup.value
        try await pushTwelve(fixture, to: "prune/keep")
        let everything = versions(1...12).union(["stable"])
        await #expect(try tags(fixture, "prune/keep") == everything)

        for dryRun in [[], ["--dry-run"]] {
            let plan = try await prune(fixture, ["--repository", "prune/keep", "--keep-last", "3", "--exclude", "stable"] + dryRun)
            #expect(plan.succeeded, "\(plan)")
            #expect(plan.standardOutput.contains("dry run: nothing was deleted"), "\(plan)")
            #expect(plan.standardOutput.contains("delete \(fixture.images["v1"]!.image.manifestDigest)"), "\(plan)")
            #expect(try auditLines(plan).isEmpty)
            await #expect(try tags(fixture, "prune/keep") == everything, "a dry run deleted something")
        }

        let run = try await prune(fixture, ["--repository", "prune/keep", "--keep-last", "3", "--exclude", "stable", "--yes"])
        #expect(run.succeeded, "\(run)")
        await #expect(try tags(fixture, "prune/keep") == versions(10...12).union(["v3", "stable"]))

        // One audit line per deleted manifest, on standard output and in the log (audit=true).
        let audits = try auditLines(run)
        let deleted = Set([1, 2, 4, 5, 6, 7, 8, 9].map { fixture.images["v\($0)"]!.image.manifestDigest })
        #expect(Set(audits.compactMap { $0["digest"] as? String }) == deleted, "\(run)")
        #expect(audits.count == deleted.count)
        #expect(audits.allSatisfy { $0["event"] as? String == "prune.delete" && $0["robot"] as? String == "portcullis-prune" && $0["repository"] as? String == "prune/keep" })
        #expect(audits.contains { ($0["tags"] as? [String]) == ["v1"] })
        #expect(run.standardError.components(separatedBy: "audit=true").count - 1 == deleted.count, "\(run)")
        // And in the configured audit stream (log.audit: audit.log).
        let streamed = fixture.deployment.auditLog.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["event"] as? String == "prune.delete" && $0["repository"] as? String == "prune/keep" }
        #expect(Set(streamed.compactMap { $0["digest"] as? String }) == deleted, "\(streamed)")

        // The shared digest and the shared base layer survive.
        let digest = try await fixture.deployment.curl(
            ["-sI", "-u", fixture.deployment.credentials("admin"), "-H", "Accept: application/vnd.oci.image.manifest.v1+json"],
            path: "/v2/prune/keep/manifests/stable")
        #expect(digest.standardOutput.lowercased().contains("docker-content-digest: \(fixture.images["v3"]!.image.manifestDigest)"), "\(digest)")
        let layer = try await fixture.deployment.curl(
            ["-o", "/dev/null", "-w", "%{http_code}", "-I", "-u", fixture.deployment.credentials("admin")],
            path: "/v2/prune/keep/blobs/\(fixture.images["v12"]!.image.layerDigests[0])")
        #expect(layer.standardOutput == "200")
        let pull = try await fixture.deployment.skopeo([
            "inspect", "--tls-verify=false", "--creds", fixture.deployment.credentials("admin"), "docker://\(fixture.deployment.host)/prune/keep:v3",
        ])
        #expect(pull.succeeded, "\(pull)")
    }

    @Test("--older-than 45d deletes exactly the images created more than 45 days ago")
    func olderThan() async throws {
        let fixture = try await Self.setup.value
        try await pushTwelve(fixture, to: "prune/age")
        let run = try await prune(fixture, ["--repository", "prune/age", "--older-than", "45d", "--yes"])
        #expect(run.succeeded, "\(run)")
        await #expect(try tags(fixture, "prune/age") == versions(8...12))
        #expect(try auditLines(run).count == 7)
    }

    @Test("an image without a creation time is timed by the push Portcullis recorded in retention.push_times; without the record --older-than never selects it")
    func pushTimeFallback() async throws {
        let fixture = try await Self.setup.value
        let deployment = fixture.deployment
        var digests: [String: String] = [:]
        for tag in ["old", "new"] {
            digests[tag] = try await pushOwnImage(fixture, to: "prune/untimed", tag: tag, created: nil, label: "untimed-\(tag)")
        }

        // One line per accepted manifest push, with the registry's digest.
        let recordPath = deployment.directory + "/push-times.log"
        let recorded = try String(contentsOfFile: recordPath, encoding: .utf8).split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String]
        }.filter { $0["repository"] == "prune/untimed" }
        #expect(recorded.map { $0["reference"] } == ["old", "new"], "\(recorded)")
        #expect(recorded.map { $0["digest"] } == [digests["old"], digests["new"]], "\(recorded)")
        #expect(recorded.allSatisfy { $0["time"].flatMap(RFC3339Timestamp.parse) != nil }, "\(recorded)")

        // Without the record both times are unknown, and --older-than never selects an unknown time.
        // The blind run reads a configuration naming a file that does not exist: the suite's record
        // stays as it is for the tests pushing beside this one.
        try await Task.sleep(for: .milliseconds(1500))
        let criteria = ["--repository", "prune/untimed", "--keep-last", "1", "--older-than", "1s"]
        let blindConfiguration = deployment.directory + "/without-push-times.yaml"
        let configuration = try String(contentsOfFile: deployment.configurationPath, encoding: .utf8)
        #expect(configuration.contains("push_times: push-times.log"))
        try Data(configuration.replacingOccurrences(of: "push_times: push-times.log", with: "push_times: no-push-times.log").utf8)
            .write(to: URL(fileURLWithPath: blindConfiguration))
        let blind = try await Command(
            try portcullisBinary(), ["prune", "--config", blindConfiguration] + criteria, timeout: .seconds(60)
        ).runInBackground()
        #expect(blind.succeeded && blind.standardOutput.contains("delete 0 manifests"), "\(blind)")
        #expect(blind.standardOutput.contains("time unknown"), "\(blind)")

        // With it, the earlier push is older than 1 s and not the newest: it goes, and the plan and
        // the audit line say its time is a push time.
        let run = try await prune(fixture, criteria + ["--yes"])
        #expect(run.succeeded, "\(run)")
        #expect(run.standardOutput.contains("delete \(digests["old"]!)  pushed 20"), "\(run)")
        let audits = try auditLines(run)
        #expect(audits.count == 1 && audits.first?["digest"] as? String == digests["old"], "\(run)")
        #expect(audits.first?["pushed"] is String && audits.first?["created"] == nil, "\(run)")
        await #expect(try tags(fixture, "prune/untimed") == ["new"])
    }

    @Test("reproducible builds' 1970-01-01 and 0001-01-01 creation times count as none: prune times those images by their recorded push, like an image without one")
    func reproducibleBuildsAreTimedByPush() async throws {
        let fixture = try await Self.setup.value
        var digests: [String: String] = [:]
        // One after the other: the push times order the three images.
        for (tag, created) in [("repro", "1970-01-01T00:00:00Z"), ("zero", "0001-01-01T00:00:00Z"), ("nocreated", nil)] {
            digests[tag] = try await pushOwnImage(fixture, to: "prune/repro", tag: tag, created: created, label: "repro-\(tag)")
        }

        // --older-than 0s selects every image whose time is known, and only those.
        let aged = try await prune(fixture, ["--repository", "prune/repro", "--tag-pattern", "repro", "--older-than", "0s"])
        #expect(aged.succeeded && aged.standardOutput.contains("delete \(digests["repro"]!)  pushed 20"), "\(aged)")

        // --keep-last 1 keeps the last pushed; the two placeholders go, timed by their pushes.
        let run = try await prune(fixture, ["--repository", "prune/repro", "--keep-last", "1", "--yes"])
        #expect(run.succeeded, "\(run)")
        #expect(run.standardOutput.contains("keep   nocreated  \(digests["nocreated"]!)  pushed 20"), "\(run)")
        for tag in ["repro", "zero"] {
            #expect(run.standardOutput.contains("delete \(digests[tag]!)  pushed 20"), "\(tag): \(run)")
        }
        #expect(!run.standardOutput.contains("unknown"), "\(run)")
        let audits = try auditLines(run)
        #expect(Set(audits.compactMap { $0["digest"] as? String }) == [digests["repro"]!, digests["zero"]!], "\(run)")
        #expect(audits.allSatisfy { $0["pushed"] is String && $0["created"] == nil }, "\(run)")
        await #expect(try tags(fixture, "prune/repro") == ["nocreated"])
    }

    @Test("--tag-pattern 'v1*' --keep-last 1 deletes only matching tags beyond the newest")
    func tagPattern() async throws {
        let fixture = try await Self.setup.value
        try await pushTwelve(fixture, to: "prune/pattern")
        let run = try await prune(fixture, ["--repository", "prune/pattern", "--tag-pattern", "v1*", "--keep-last", "1", "--yes"])
        #expect(run.succeeded, "\(run)")
        await #expect(try tags(fixture, "prune/pattern") == versions(2...9).union(["v12", "stable"]))
    }

    @Test("a repository glob, --tag-pattern 'v*' --exclude 'v1?' --older-than 65d: a selected tag whose digest a kept tag shares survives")
    func excludeWithSharedDigest() async throws {
        let fixture = try await Self.setup.value
        try await pushTwelve(fixture, to: "prune/mixed")
        let run = try await prune(fixture, ["--repository", "prune/mix*", "--tag-pattern", "v*", "--exclude", "v1?", "--older-than", "65d", "--yes"])
        #expect(run.succeeded, "\(run)")
        #expect(run.standardOutput.contains("keep   v3  \(fixture.images["v3"]!.image.manifestDigest)"), "\(run)")
        #expect(run.standardOutput.contains("digest also tagged stable, which is kept"), "\(run)")
        await #expect(try tags(fixture, "prune/mixed") == versions(6...12).union(["v3", "stable"]))
    }

    @Test("prune refuses a robot without delete, an unknown robot and a repository outside its grant, deleting nothing; the robot reads tags of a digest with its secret")
    func refusals() async throws {
        let fixture = try await Self.setup.value
        let push = try await skopeoCopy(fixture, image: "v1", as: "admin", to: "prune/refused:v1").runInBackground()
        #expect(push.succeeded, "\(push)")
        let options = ["--keep-last", "0", "--yes"]

        let reader = try await prune(fixture, ["--repository", "prune/refused", "--robot", "prune-reader"] + options)
        #expect(!reader.succeeded)
        #expect(reader.standardError.contains(#"robot "prune-reader" may not prune prune/refused: the rules must grant it pull and delete"#), "\(reader)")
        #expect(reader.standardError.contains("granted pull"), "\(reader)")

        let unknown = try await prune(fixture, ["--repository", "prune/refused", "--robot", "nobody"] + options)
        #expect(!unknown.succeeded)
        #expect(unknown.standardError.contains(#"no robot "nobody" in users.robots"#), "\(unknown)")

        let outside = try await prune(fixture, ["--repository", "alice/app"] + options)
        #expect(!outside.succeeded)
        #expect(outside.standardError.contains(#"robot "portcullis-prune" may not prune alice/app"#), "\(outside)")

        let noCriteria = try await prune(fixture, ["--repository", "prune/refused", "--yes"])
        #expect(!noCriteria.succeeded)
        #expect(noCriteria.standardError.contains("give at least one of --keep-last, --older-than and --tag-pattern"), "\(noCriteria)")
        await #expect(try tags(fixture, "prune/refused") == ["v1"])

        // The robot's own secret works on the proxy (Portcullis reloads robots within a second).
        var answer = (body: [String: Any](), status: "")
        for _ in 0..<40 {
            answer = split(try await fixture.deployment.curl(
                ["-w", "\n%{http_code}", "-u", "portcullis-prune:\(fixture.robotSecret)"],
                path: "/v2/prune/refused/tags/list?digest=\(fixture.images["v1"]!.image.manifestDigest)"))
            if answer.status == "200" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(answer.status == "200")
        #expect(answer.body["tags"] as? [String] == ["v1"])
    }

    // MARK: - Tags of a digest

    @Test("tags/list?digest= returns latest and foobar for an image pushed under both, refuses callers without pull, and follows a push and a delete through Portcullis; portcullis tags agrees")
    func tagsOfDigest() async throws {
        let fixture = try await Self.setup.value
        let deployment = fixture.deployment
        for (image, tag) in [("v5", "latest"), ("v5", "foobar"), ("v6", "other")] {
            let push = try await skopeoCopy(fixture, image: image, as: "alice", to: "alice/web:\(tag)").runInBackground()
            #expect(push.succeeded, "\(push)")
        }
        let digest = fixture.images["v5"]!.image.manifestDigest
        let path = "/v2/alice/web/tags/list?digest=\(digest)"

        let answer = split(try await deployment.curl(["-w", "\n%{http_code}", "-u", deployment.credentials("alice")], path: path))
        #expect(answer.status == "200")
        #expect(answer.body["tags"] as? [String] == ["foobar", "latest"])
        #expect(answer.body["name"] as? String == "alice/web")
        #expect(answer.body["digest"] as? String == digest)

        // The plain tags/list is still the registry's.
        let plain = split(try await deployment.curl(["-w", "\n%{http_code}", "-u", deployment.credentials("alice")], path: "/v2/alice/web/tags/list"))
        #expect(Set(plain.body["tags"] as? [String] ?? []) == ["latest", "foobar", "other"])
        #expect(plain.body["digest"] == nil)

        // Without pull: the registry's own 401 challenge, from the existing authorization.
        for credentials in [["-u", deployment.credentials("bob")], []] {
            let refused = try await deployment.curl(["-i"] + credentials, path: path)
            #expect(refused.standardOutput.hasPrefix("HTTP/1.1 401"), "\(refused)")
            #expect(refused.standardOutput.contains(#"scope="repository:alice/web:pull""#), "\(refused)")
            #expect(!refused.standardOutput.contains("foobar"))
        }

        // Malformed digests and unknown repositories.
        let invalid = split(try await deployment.curl(["-w", "\n%{http_code}", "-u", deployment.credentials("alice")], path: "/v2/alice/web/tags/list?digest=sha256:nothex"))
        #expect(invalid.status == "400")
        #expect(((invalid.body["errors"] as? [[String: Any]])?.first?["code"] as? String) == "DIGEST_INVALID")
        let unknown = split(try await deployment.curl(["-w", "\n%{http_code}", "-u", deployment.credentials("alice")], path: "/v2/alice/nothing/tags/list?digest=\(digest)"))
        #expect(unknown.status == "404")
        #expect(((unknown.body["errors"] as? [[String: Any]])?.first?["code"] as? String) == "NAME_UNKNOWN")

        // A second question is answered from the cache; a push through Portcullis invalidates it.
        let again = split(try await deployment.curl(["-w", "\n%{http_code}", "-u", deployment.credentials("alice")], path: path))
        #expect(again.body["tags"] as? [String] == ["foobar", "latest"])
        let answeredLines = { (log: String) in
            log.split(separator: "\n").filter {
                $0.contains("path=/v2/alice/web/tags/list") && ($0.contains("(from the registry)") || $0.contains("(cached)"))
            }
        }
        let log = await deployment.gateway.log(once: { answeredLines($0).count >= 2 })
        let lines = answeredLines(log)
        #expect(
            lines.count == 2 && lines[0].contains("from the registry") && lines[1].contains("(cached)"),
            "\(lines); every line about alice/web's tags: \(log.split(separator: "\n").filter { $0.contains("alice/web/tags") })")

        let push = try await skopeoCopy(fixture, image: "v5", as: "alice", to: "alice/web:v2").runInBackground()
        #expect(push.succeeded, "\(push)")
        let after = split(try await deployment.curl(["-w", "\n%{http_code}", "-u", deployment.credentials("alice")], path: path))
        #expect(after.body["tags"] as? [String] == ["foobar", "latest", "v2"])

        let cli = try await Command(try portcullisBinary(), ["tags", "--config", deployment.configurationPath, "--repository", "alice/web", "--digest", digest]).runInBackground()
        #expect(cli.succeeded, "\(cli)")
        #expect(cli.standardOutput == "foobar\nlatest\nv2\n")
        let cliUnknown = try await Command(try portcullisBinary(), ["tags", "--config", deployment.configurationPath, "--repository", "alice/nothing", "--digest", digest]).runInBackground()
        #expect(!cliUnknown.succeeded && cliUnknown.standardError.contains("not found"), "\(cliUnknown)")

        // A delete through Portcullis invalidates the cache too: the digest's tags are gone.
        let cached = split(try await deployment.curl(["-w", "\n%{http_code}", "-u", deployment.credentials("alice")], path: path))
        #expect(cached.body["tags"] as? [String] == ["foobar", "latest", "v2"])
        let delete = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", "-u", deployment.credentials("alice")], path: "/v2/alice/web/manifests/\(digest)")
        #expect(delete.standardOutput == "202", "\(delete)")
        let deleted = split(try await deployment.curl(["-w", "\n%{http_code}", "-u", deployment.credentials("alice")], path: path))
        #expect(deleted.status == "200" && deleted.body["tags"] as? [String] == [], "\(deleted)")
    }
}
