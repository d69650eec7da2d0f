import Foundation
import Testing
import TestSupport

/// `content:` immutable tags against the real registry 2.8.2, with skopeo and curl.
@Suite("content rules: immutable tags in front of registry 2.8.2")
struct ImmutableTagsTests {
    static let users = ["admin": "admin-secret", "ci": "ci-secret"]
    static let rules = """
          - {account: admin, name: "**", actions: ["*"]}
          - {account: ci, name: "**", actions: [pull, push, delete]}
          - {account: "paths*", name: "release/paths", actions: [pull, push, delete]}
          - {account: portcullis-prune, name: "release/**", actions: [pull, delete]}
        """
    static let content = """
        ui:
          enabled: true
        content:
          - repositories: ["release/**"]
            immutable_tags: ["v*", "/^[0-9]+(\\\\.[0-9]+)*$/"]
        """

    struct Fixture: Sendable {
        var deployment: Deployment
        /// Three different images, `a`, `b` and `c`, each an OCI layout with the tag `v1`.
        var images: [String: (path: String, image: OCIImageLayout.Image)]
    }

    static let setup = Task { () throws -> Fixture in
        let deployment = try await Deployment.start(users: users, rules: rules, extraConfiguration: content)
        _ = try await GatewayUser.portcullis(["robot", "create", "portcullis-prune", "--config", deployment.configurationPath, "--expires", "1d"])
            .runInBackground().checked()
        var images: [String: (path: String, image: OCIImageLayout.Image)] = [:]
        for name in ["a", "b", "c", "d", "e", "f"] {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("oci-immutable-\(name)-\(UUID().uuidString.prefix(8))").path
            let image = try OCIImageLayout.write(to: path, tag: "v1", layers: [["file.txt": Data("image \(name)\n".utf8)]], label: name)
            images[name] = (path, image)
        }
        return Fixture(deployment: deployment, images: images)
    }

    /// Status, error code and message of a request through Portcullis.
    struct Answer: Equatable, CustomStringConvertible {
        var status: Int
        var code: String?
        var message: String?
        var description: String { "\(status) \(code ?? "-") \(message ?? "")" }
    }

    func request(_ deployment: Deployment, _ method: String, _ path: String, credentials: String? = nil, bearer: String? = nil, body: String? = nil) async throws -> Answer {
        var arguments = ["-X", method, "-o", "-", "-w", "\n%{http_code}", "-H", "Accept: application/vnd.oci.image.manifest.v1+json"]
        if let credentials { arguments += ["-u", credentials] }
        if let bearer { arguments += ["-H", "Authorization: Bearer \(bearer)"] }
        if let body { arguments += ["-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", "@\(body)"] }
        let result = try await deployment.curl(arguments, path: path)
        let output = result.standardOutput
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        let json = lines.dropLast().joined(separator: "\n")
        let error = (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]).flatMap { ($0["errors"] as? [[String: Any]])?.first }
        return Answer(status: status, code: error?["code"] as? String, message: error?["message"] as? String)
    }

    /// The manifest file of an image in its layout.
    func manifestFile(_ image: (path: String, image: OCIImageLayout.Image)) -> String {
        image.path + "/blobs/sha256/" + image.image.manifestDigest.dropFirst("sha256:".count)
    }

    func digest(of reference: String, in repository: String, _ deployment: Deployment) async throws -> String? {
        let result = try await deployment.curl(
            ["-I", "-u", deployment.credentials("admin"), "-H", "Accept: application/vnd.oci.image.manifest.v1+json"], path: "/v2/\(repository)/manifests/\(reference)")
        return result.standardOutput.split(whereSeparator: \.isNewline).first { $0.lowercased().hasPrefix("docker-content-digest:") }
            .map { $0.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    @Test("skopeo: a protected tag takes its first push and a re-push of the same image; another image is refused with a message naming the tag, its digest and the rule")
    func protectedTagKeepsItsImage() async throws {
        let fixture = try await Self.setup.value
        let deployment = fixture.deployment
        let (a, b) = (fixture.images["a"]!, fixture.images["b"]!)
        try await deployment.push(a.path, credentials: deployment.credentials("ci"), to: "release/app:v1.0").checked()
        try await deployment.push(a.path, credentials: deployment.credentials("ci"), to: "release/app:v1.0").checked()
        let refused = try await deployment.push(b.path, credentials: deployment.credentials("ci"), to: "release/app:v1.0")
        #expect(refused.status != 0)
        #expect(refused.standardError.contains("tag v1.0 is immutable"), "\(refused.standardError)")
        #expect(refused.standardError.contains(a.image.manifestDigest), "\(refused.standardError)")
        #expect(refused.standardError.contains("content[0]"), "\(refused.standardError)")
        #expect(try await digest(of: "v1.0", in: "release/app", deployment) == a.image.manifestDigest)
        #expect(deployment.auditLog.contains("is immutable"))
    }

    @Test("an unprotected tag still moves, and a repository no content rule names is untouched")
    func unprotectedTagsMove() async throws {
        let fixture = try await Self.setup.value
        let deployment = fixture.deployment
        let (a, b) = (fixture.images["a"]!, fixture.images["b"]!)
        for repository in ["release/moving", "scratch/app"] {
            for tag in ["latest"] + (repository == "scratch/app" ? ["v1.0"] : []) {
                try await deployment.push(a.path, credentials: deployment.credentials("ci"), to: "\(repository):\(tag)").checked()
                try await deployment.push(b.path, credentials: deployment.credentials("ci"), to: "\(repository):\(tag)").checked()
                #expect(try await digest(of: tag, in: repository, deployment) == b.image.manifestDigest)
            }
        }
    }

    @Test("deleting a manifest a protected tag points to, or the protected tag itself, is refused with 403 DENIED; an untagged manifest is deleted")
    func deletesOfProtectedContentAreRefused() async throws {
        let fixture = try await Self.setup.value
        let deployment = fixture.deployment
        let (c, d) = (fixture.images["c"]!, fixture.images["d"]!)
        try await deployment.push(c.path, credentials: deployment.credentials("ci"), to: "release/deletes:1.2.3").checked()
        try await deployment.push(d.path, credentials: deployment.credentials("ci"), to: "release/deletes:scratch").checked()
        let byDigest = try await request(deployment, "DELETE", "/v2/release/deletes/manifests/\(c.image.manifestDigest)", credentials: deployment.credentials("admin"))
        #expect(byDigest.status == 403 && byDigest.code == "DENIED", "\(byDigest)")
        #expect(byDigest.message?.contains("tag 1.2.3 is immutable") == true, "\(byDigest)")
        let byTag = try await request(deployment, "DELETE", "/v2/release/deletes/manifests/1.2.3", credentials: deployment.credentials("admin"))
        #expect(byTag.status == 403 && byTag.code == "DENIED", "\(byTag)")
        #expect(try await digest(of: "1.2.3", in: "release/deletes", deployment) == c.image.manifestDigest)
        // `scratch` is not protected: its manifest goes.
        let unprotected = try await request(deployment, "DELETE", "/v2/release/deletes/manifests/\(d.image.manifestDigest)", credentials: deployment.credentials("admin"))
        #expect(unprotected.status == 202, "\(unprotected)")
    }

    @Test("six concurrent first pushes of one protected tag, each a different image: exactly one is stored, the others are refused")
    func concurrentFirstPushesOneWins() async throws {
        let fixture = try await Self.setup.value
        let deployment = fixture.deployment
        let names = ["a", "b", "c", "d", "e", "f"]
        // The blobs first, under unprotected tags; then only the manifests race.
        for name in names {
            try await deployment.push(fixture.images[name]!.path, credentials: deployment.credentials("ci"), to: "release/race:blobs-\(name)").checked()
        }
        let answers = try await withThrowingTaskGroup(of: (String, Answer).self) { group in
            for name in names {
                group.addTask {
                    (name, try await request(deployment, "PUT", "/v2/release/race/manifests/v9", credentials: deployment.credentials("ci"), body: manifestFile(fixture.images[name]!)))
                }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        let winners = answers.filter { $0.value.status == 201 }
        #expect(winners.count == 1, "\(answers)")
        #expect(answers.values.filter { $0.status == 403 && $0.code == "DENIED" }.count == names.count - 1, "\(answers)")
        let winner = try #require(winners.first?.key)
        #expect(try await digest(of: "v9", in: "release/race", deployment) == fixture.images[winner]!.image.manifestDigest)
    }

    @Test("every content-rule case has the same outcome on the first request (credential verified in the request loop) and the next (cached credential, event-loop fast path), with Basic credentials and with a token")
    func fastAndSlowPathsAgree() async throws {
        let fixture = try await Self.setup.value
        let deployment = fixture.deployment
        let (e, f) = (fixture.images["e"]!, fixture.images["f"]!)
        try await deployment.push(e.path, credentials: deployment.credentials("ci"), to: "release/paths:v1").checked()
        try await deployment.push(f.path, credentials: deployment.credentials("ci"), to: "release/paths:blobs-f").checked()
        let cases: [(String, String, String?, Int)] = [
            ("PUT", "/v2/release/paths/manifests/v1", manifestFile(f), 403),  // moves a protected tag
            ("PUT", "/v2/release/paths/manifests/v1", manifestFile(e), 201),  // the same image again
            ("PUT", "/v2/release/paths/manifests/unprotected", manifestFile(f), 201),
            ("DELETE", "/v2/release/paths/manifests/v1", nil, 403),
            ("DELETE", "/v2/release/paths/manifests/\(e.image.manifestDigest)", nil, 403),
            ("GET", "/v2/release/paths/manifests/v1", nil, 200),
        ]
        // A new account per case, so that its first request finds nothing cached: its password is
        // verified in the request loop, the next request's from the cache on the event loop. A
        // token's first use is verified in the request loop, the next from the cache too.
        var users = Self.users
        for index in cases.indices { users["paths\(index)"] = "paths\(index)-secret" }
        try deployment.writeUsers(users)
        for (index, (method, path, body, expected)) in cases.enumerated() {
            let credentials = "paths\(index):paths\(index)-secret"
            let first = try await request(deployment, method, path, credentials: credentials, body: body)
            let second = try await request(deployment, method, path, credentials: credentials, body: body)
            let tokenAnswer = try await deployment.curl(
                ["-u", credentials], path: "/token?service=portcullis&scope=repository:release/paths:pull,push,delete")
            let token = try #require(
                (try? JSONSerialization.jsonObject(with: tokenAnswer.standardOutputData) as? [String: Any])?["token"] as? String, "\(tokenAnswer.standardOutput)")
            let withToken = try await request(deployment, method, path, bearer: token, body: body)
            let withTokenAgain = try await request(deployment, method, path, bearer: token, body: body)
            #expect(first.status == expected, "\(method) \(path): \(first)")
            #expect([second, withToken, withTokenAgain].allSatisfy { $0.status == first.status && $0.code == first.code && $0.message == first.message },
                "\(method) \(path): \(first) / \(second) / \(withToken) / \(withTokenAgain)")
        }
    }

    @Test("prune plans an image with an immutable tag as kept, saying why; the registry browser offers no delete for it and refuses one posted anyway")
    func pruneAndBrowserKeepImmutableImages() async throws {
        let fixture = try await Self.setup.value
        let deployment = fixture.deployment
        let (a, b) = (fixture.images["a"]!, fixture.images["b"]!)
        try await deployment.push(a.path, credentials: deployment.credentials("ci"), to: "release/kept:v2").checked()
        try await deployment.push(b.path, credentials: deployment.credentials("ci"), to: "release/kept:nightly").checked()
        let plan = try await Command(
            try portcullisBinary(), ["prune", "--config", deployment.configurationPath, "--repository", "release/kept", "--keep-last", "0"], timeout: .seconds(60)
        ).runInBackground().checked()
        #expect(plan.standardOutput.contains("keep   v2  \(a.image.manifestDigest)"), "\(plan.standardOutput)")
        #expect(plan.standardOutput.contains("(immutable tag (content[0] immutable_tags v*))"), "\(plan.standardOutput)")
        #expect(plan.standardOutput.contains("delete \(b.image.manifestDigest)"), "\(plan.standardOutput)")

        let jar = FileManager.default.temporaryDirectory.appendingPathComponent("immutable-ui-\(UUID().uuidString.prefix(8))").path
        func browse(_ path: String, form: [String: String]? = nil) async throws -> String {
            var arguments = ["-s", "-i", "-b", jar, "-c", jar]
            for (name, value) in (form ?? [:]).sorted(by: { $0.key < $1.key }) { arguments += ["--data-urlencode", "\(name)=\(value)"] }
            return try await deployment.curl(arguments, path: path).standardOutput
        }
        func csrf(_ page: String) throws -> String {
            let range = try #require(page.range(of: #"name="csrf" value="([0-9a-f]+)""#, options: .regularExpression))
            return String(page[range].split(separator: "\"")[3])
        }
        let login = try await browse("/ui/login")
        _ = try await browse("/ui/login", form: ["username": "admin", "password": "admin-secret", "csrf": try csrf(login)])
        let page = try await browse("/ui/r/release/kept")
        #expect(page.contains("tag v2 is immutable (content[0] immutable_tags v*): this manifest cannot be deleted."), "\(page)")
        #expect(page.contains("/ui/delete?repository=release/kept&amp;digest=\(b.image.manifestDigest)"))
        #expect(!page.contains("/ui/delete?repository=release/kept&amp;digest=\(a.image.manifestDigest)"))
        let confirm = try await browse("/ui/delete?repository=release/kept&digest=\(a.image.manifestDigest)")
        #expect(confirm.hasPrefix("HTTP/1.1 403"), "\(confirm)")
        let forced = try await browse("/ui/delete", form: ["repository": "release/kept", "digest": a.image.manifestDigest, "csrf": try csrf(try await browse("/ui/delete?repository=release/kept&digest=\(b.image.manifestDigest)"))])
        #expect(forced.hasPrefix("HTTP/1.1 403") && forced.contains("cannot be deleted"), "\(forced)")
        #expect(try await digest(of: "v2", in: "release/kept", deployment) == a.image.manifestDigest)
    }
}
