import Crypto
import Foundation
import Testing
import TestSupport

/// The registry browser (`ui.enabled`) through curl, against a real registry with images pushed
/// by skopeo: login, sessions, the repositories a user may pull, tags grouped by digest, and the
/// security properties of every page.
@Suite("Registry browser under /ui/", .serialized)
final class RegistryBrowserTests {
    let deployment: Deployment
    let jar: String

    init() async throws {
        deployment = try await Deployment.start(
            users: ["alice": "alice-secret", "bob": "bob-secret", "admin": "admin-secret"],
            rules: """
                  - {account: admin, name: "**", actions: ["*"]}
                  - {account: "*", name: "public/**", actions: [pull]}
                  - {account: "*", name: "${account}/**", actions: [pull, push, delete]}
                """,
            extraConfiguration: "ui: {enabled: true}\nthrottling: {max_failures: 3}\nretention: {push_times: push-times.log}")
        jar = deployment.directory + "/cookies-\(UUID().uuidString.prefix(6))"
        let (layout, _) = try writeImage(named: "ui", content: "an image to browse")
        for (account, reference) in [("alice", "alice/app:v1"), ("alice", "alice/app:latest"), ("bob", "bob/secret:v1"), ("admin", "public/base:v1")] {
            _ = try await deployment.push(layout, credentials: deployment.credentials(account), to: reference).checked()
        }
        try? FileManager.default.removeItem(atPath: layout)
    }

    deinit { deployment.stop() }

    /// GET or POST through curl with this test's cookie jar; the raw answer, head and body.
    func browse(_ path: String, form: [String: String]? = nil, cookies: String? = nil) async throws -> String {
        var arguments = ["-s", "-i", "-b", cookies ?? jar, "-c", jar]
        if let form {
            for (name, value) in form.sorted(by: { $0.key < $1.key }) { arguments += ["--data-urlencode", "\(name)=\(value)"] }
        }
        return try await deployment.curl(arguments, path: path).standardOutput
    }

    func csrf(in page: String) -> String? {
        guard let range = page.range(of: #"name="csrf" value="([0-9a-f]+)""#, options: .regularExpression) else { return nil }
        return String(page[range].split(separator: "\"")[3])
    }

    func logIn(_ account: String, _ password: String) async throws -> String {
        let form = try await browse("/ui/login")
        let token = try #require(csrf(in: form))
        return try await browse("/ui/login", form: ["username": account, "password": password, "csrf": token])
    }

    @Test("the login page carries the security headers, a CSRF field and a strict HttpOnly cookie; a login redirects to the repositories with a session cookie")
    func loginPageAndSession() async throws {
        let page = try await browse("/ui/login")
        #expect(page.hasPrefix("HTTP/1.1 200"))
        for header in ["content-security-policy: default-src 'self'", "x-frame-options: DENY", "x-content-type-options: nosniff"] {
            #expect(page.lowercased().contains(header.lowercased()), "missing \(header)")
        }
        #expect(csrf(in: page) != nil)
        #expect(page.contains("HttpOnly; SameSite=Strict"))
        #expect(!page.contains("<script"), "a page needs no JavaScript")
        let login = try await logIn("alice", "alice-secret")
        #expect(login.hasPrefix("HTTP/1.1 303"), "\(login)")
        #expect(login.contains("location: /ui/") || login.contains("Location: /ui/"))
        #expect(login.range(of: #"portcullis_ui=ey[^;]+; Path=/ui; Max-Age=28800; HttpOnly; SameSite=Strict"#, options: .regularExpression) != nil, "\(login)")
        #expect(!deployment.gateway.log.contains("alice-secret"), "a password reached the log")
    }

    @Test("a user sees only the repositories they may pull, and a repository's tags grouped under one digest with pull lines")
    func repositoriesAndTags() async throws {
        _ = try await logIn("alice", "alice-secret")
        let list = try await browse("/ui/")
        #expect(list.hasPrefix("HTTP/1.1 200"), "\(list)")
        #expect(list.contains(">alice/app<") && list.contains(">public/base<"), "\(list)")
        #expect(!list.contains("bob/secret"), "alice sees bob's repository")
        let repository = try await browse("/ui/r/alice/app")
        #expect(repository.hasPrefix("HTTP/1.1 200"), "\(repository)")
        #expect(repository.components(separatedBy: "<section class=\"digest\">").count == 2, "v1 and latest are one digest: \(repository)")
        #expect(repository.contains("docker pull 127.0.0.1:\(deployment.gatewayPort)/alice/app:latest") && repository.contains(">v1<"))
        #expect(repository.contains("docker pull 127.0.0.1:\(deployment.gatewayPort)/alice/app@sha256:"))
        // What the manifest is: an image, its size (config and layers), and its time (this image has
        // no creation time, so the push Portcullis recorded).
        #expect(repository.contains(#"<span class="kind">image</span>"#), "\(repository)")
        #expect(repository.range(of: #"<span class="size">[0-9.]+ (B|kB|MB)</span>"#, options: .regularExpression) != nil, "\(repository)")
        #expect(repository.range(of: #"<span class="time">pushed [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z</span>"#, options: .regularExpression) != nil, "\(repository)")
        #expect(!repository.contains(#"class="platforms""#), "an image has no platform list")
    }

    @Test("an image's time is its creation time in RFC 3339, else its recorded push: 0001-01-01 and 1970-01-01 (reproducible builds) and no creation time show the push, said once")
    func imageTimes() async throws {
        let images = [("dated", "2024-05-01T12:00:00.25Z"), ("zero", "0001-01-01T00:00:00Z"), ("repro", "1970-01-01T00:00:00Z"), ("nocreated", nil)]
        for (tag, created) in images {
            let layout = FileManager.default.temporaryDirectory.appendingPathComponent("oci-time-\(tag)-\(UUID().uuidString.prefix(8))").path
            defer { try? FileManager.default.removeItem(atPath: layout) }
            _ = try OCIImageLayout.write(to: layout, tag: "v1", layers: [["own.txt": Data("timed \(tag)\n".utf8)]], created: created, label: tag)
            _ = try await deployment.push(layout, credentials: deployment.credentials("alice"), to: "alice/times:\(tag)").checked()
        }
        _ = try await logIn("alice", "alice-secret")
        let page = try await browse("/ui/r/alice/times")
        #expect(page.hasPrefix("HTTP/1.1 200"), "\(page)")
        var times: [String: String] = [:]
        for section in page.components(separatedBy: "<section class=\"digest\">").dropFirst() {
            guard let tag = section.firstMatch(of: #/<span class="tag">([^<]+)</span>/#)?.1,
                let time = section.firstMatch(of: #/<span class="time">([^<]+)</span>/#)?.1
            else { continue }
            times[String(tag)] = String(time)
        }
        #expect(times.count == 4, "\(page)")
        #expect(times["dated"] == "created 2024-05-01T12:00:00Z", "\(times)")
        for tag in ["zero", "repro", "nocreated"] {
            #expect(times[tag]?.wholeMatch(of: #/pushed 20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z/#) != nil, "\(tag): \(times)")
        }
    }

    @Test("bob opening alice's repository by URL gets the same not-found page as for a repository that does not exist, without its tags")
    func noLeakByURL() async throws {
        _ = try await logIn("bob", "bob-secret")
        let other = try await browse("/ui/r/alice/app")
        let missing = try await browse("/ui/r/bob/nothing-here")
        #expect(other.hasPrefix("HTTP/1.1 404") && missing.hasPrefix("HTTP/1.1 404"))
        #expect(!other.contains("v1") && !other.contains("sha256:"), "\(other)")
    }

    @Test("a wrong password shows an error and counts toward throttling; a forged or missing cookie goes back to the login page")
    func refusals() async throws {
        let wrong = try await logIn("alice", "not-her-password")
        #expect(wrong.hasPrefix("HTTP/1.1 401") && wrong.contains("Wrong user name or password."), "\(wrong)")
        _ = try await logIn("alice", "still-wrong")
        _ = try await logIn("alice", "wrong-again")
        let throttled = try await logIn("alice", "alice-secret")
        #expect(throttled.hasPrefix("HTTP/1.1 429") && throttled.contains("Too many failed logins"), "\(throttled)")

        let forgedJar = deployment.directory + "/forged-cookies"
        try Data("127.0.0.1\tFALSE\t/ui\tFALSE\t0\tportcullis_ui\teyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.\n".utf8).write(to: URL(fileURLWithPath: forgedJar))
        let forged = try await browse("/ui/", cookies: forgedJar)
        #expect(forged.hasPrefix("HTTP/1.1 303") && forged.lowercased().contains("location: /ui/login"), "\(forged)")
        let none = try await browse("/ui/", cookies: "/dev/null")
        #expect(none.hasPrefix("HTTP/1.1 303"))
        let noCSRF = try await browse("/ui/login", form: ["username": "bob", "password": "bob-secret"], cookies: "/dev/null")
        #expect(noCSRF.hasPrefix("HTTP/1.1 403"), "a login without the form's CSRF token was taken: \(noCSRF)")
    }

    @Test("text from the request is escaped: a filter of <script> is shown as text")
    func escaping() async throws {
        _ = try await logIn("alice", "alice-secret")
        let page = try await browse("/ui/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "\(page)")
        #expect(!page.contains("<script>alert(1)"))
    }

    @Test("logging out needs the session's CSRF token and clears the cookie; a removed user's session ends")
    func logoutAndRemovedUser() async throws {
        _ = try await logIn("alice", "alice-secret")
        let refused = try await browse("/ui/logout", form: ["csrf": "0000"])
        #expect(refused.hasPrefix("HTTP/1.1 403"))
        let list = try await browse("/ui/")
        let token = try #require(csrf(in: list))
        let out = try await browse("/ui/logout", form: ["csrf": token])
        #expect(out.hasPrefix("HTTP/1.1 303") && out.contains("portcullis_ui=; Path=/ui; Max-Age=0"), "\(out)")

        _ = try await logIn("bob", "bob-secret")
        #expect(try await browse("/ui/").hasPrefix("HTTP/1.1 200"))
        try deployment.writeUsers(["alice": "alice-secret", "admin": "admin-secret"])
        _ = await text({ self.deployment.gateway.log }, once: { $0.contains("configuration reloaded") }, timeout: .seconds(10))
        let after = try await browse("/ui/")
        #expect(after.hasPrefix("HTTP/1.1 303"), "a removed user still browses: \(after)")
    }

    @Test("delete: a confirmation step, then the manifest and its tags are gone (the registry agrees, the audit stream has it); without delete in the rules the button is absent and the server refuses")
    func deleteWithConfirmation() async throws {
        _ = try await logIn("alice", "alice-secret")
        let repository = try await browse("/ui/r/alice/app")
        let link = try #require(repository.range(of: #"/ui/delete\?repository=alice/app&amp;digest=sha256:[0-9a-f]{64}"#, options: .regularExpression), "\(repository)")
        let confirmPath = String(repository[link]).replacingOccurrences(of: "&amp;", with: "&")
        let digest = String(confirmPath.split(separator: "=").last!)
        let confirm = try await browse(confirmPath)
        #expect(confirm.hasPrefix("HTTP/1.1 200") && confirm.contains(">latest<") && confirm.contains(">v1<"), "\(confirm)")
        let token = try #require(csrf(in: confirm))
        let deleted = try await browse("/ui/delete", form: ["csrf": token, "repository": "alice/app", "digest": digest])
        #expect(deleted.hasPrefix("HTTP/1.1 303"), "\(deleted)")
        let after = try await browse("/ui/r/alice/app")
        #expect(!after.contains(digest), "the deleted digest is still listed")
        let registry = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-I", "-u", deployment.credentials("alice")], path: "/v2/alice/app/manifests/\(digest)")
        #expect(registry.standardOutput == "404", "the registry still has the manifest")
        #expect(deployment.auditLog.contains("\"event\":\"delete\"") && deployment.auditLog.contains("alice/app"), "\(deployment.auditLog)")

        _ = try await logIn("bob", "bob-secret")
        let publicPage = try await browse("/ui/r/public/base")
        #expect(publicPage.hasPrefix("HTTP/1.1 200") && !publicPage.contains("/ui/delete"), "bob may not delete in public/base: \(publicPage)")
        let bobToken = try #require(csrf(in: publicPage))
        let digestRange = try #require(publicPage.range(of: #"sha256:[0-9a-f]{64}"#, options: .regularExpression))
        let refused = try await browse("/ui/delete", form: ["csrf": bobToken, "repository": "public/base", "digest": String(publicPage[digestRange])])
        #expect(refused.hasPrefix("HTTP/1.1 403"), "\(refused)")
    }

    @Test("the prune preview shows the plan portcullis prune would make as a table and the command to run it, deletes nothing, names a bad option, and says whether the portcullis-prune robot may run it")
    func prunePreview() async throws {
        let (layout, _) = try writeImage(named: "newer", content: "a second image")
        defer { try? FileManager.default.removeItem(atPath: layout) }
        _ = try await deployment.push(layout, tag: "v1", credentials: deployment.credentials("alice"), to: "alice/app:v2").checked()
        _ = try await logIn("alice", "alice-secret")
        let repository = try await browse("/ui/r/alice/app")
        #expect(repository.contains(#"action="/ui/prune""#), "no prune preview form: \(repository)")
        let preview = try await browse("/ui/prune?repository=alice%2Fapp&keep_last=1")
        #expect(preview.hasPrefix("HTTP/1.1 200"), "\(preview)")
        #expect(preview.components(separatedBy: "<tr class=\"delete\">").count == 2, "one manifest to delete: \(preview)")
        #expect(preview.contains("<tr class=\"keep\">"))
        #expect(preview.contains("portcullis prune --config portcullis.yaml --repository alice/app --keep-last 1 --yes"))
        #expect(preview.contains("This command would be refused: there is no robot &quot;portcullis-prune&quot; in users.robots"), "\(preview)")
        let tags = try await deployment.curl(["-u", deployment.credentials("alice")], path: "/v2/alice/app/tags/list")
        #expect(tags.standardOutput.contains("\"v1\"") && tags.standardOutput.contains("\"v2\"") && tags.standardOutput.contains("\"latest\""), "the preview deleted something: \(tags)")
        let bad = try await browse("/ui/prune?repository=alice%2Fapp&keep_last=many")
        #expect(bad.hasPrefix("HTTP/1.1 400") && bad.contains("a whole number"), "\(bad)")
        let none = try await browse("/ui/prune?repository=alice%2Fapp")
        #expect(none.hasPrefix("HTTP/1.1 400") && none.contains("every tag would go"))
        _ = try await logIn("bob", "bob-secret")
        #expect(try await browse("/ui/prune?repository=alice%2Fapp&keep_last=1").hasPrefix("HTTP/1.1 404"))

        // With the robot, the preview names the rule that keeps it out of alice/app, and says a
        // repository its rules cover would be pruned.
        let reloads = deployment.gateway.log.components(separatedBy: "configuration reloaded").count
        _ = try await GatewayUser.portcullis(["robot", "create", "portcullis-prune", "--config", deployment.configurationPath, "--expires", "1d"])
            .runInBackground().checked()
        _ = await deployment.gateway.log(once: { $0.components(separatedBy: "configuration reloaded").count > reloads }, timeout: .seconds(30))
        for tag in ["v1", "v2"] {
            _ = try await deployment.push(layout, tag: "v1", credentials: deployment.credentials("admin"), to: "portcullis-prune/app:\(tag)").checked()
        }
        _ = try await logIn("alice", "alice-secret")
        let refused = try await browse("/ui/prune?repository=alice%2Fapp&keep_last=1")
        #expect(refused.contains("This command would be refused: robot &quot;portcullis-prune&quot; may not prune alice/app: the rules must grant it pull and delete"), "\(refused)")
        #expect(refused.contains("repository:alice/app:pull,delete: no rule matched; nothing granted"), "the decision is not named: \(refused)")
        _ = try await logIn("admin", "admin-secret")
        let allowed = try await browse("/ui/prune?repository=portcullis-prune%2Fapp&keep_last=1")
        #expect(allowed.contains("The rules let the robot portcullis-prune pull and delete in portcullis-prune/app: this command would run."), "\(allowed)")
        #expect(!allowed.contains("would be refused"), "\(allowed)")
    }

    /// A session token signed with the deployment's own key (named by an embedded jwk), for `alice`.
    func sessionToken(expiresIn seconds: Double) throws -> String {
        func encode(_ data: Data) -> String {
            data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        let key = try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOfFile: deployment.directory + "/keys/token.key", encoding: .utf8))
        let raw = key.publicKey.rawRepresentation
        let jwk = #"{"crv":"P-256","kty":"EC","x":"\#(encode(raw.prefix(32)))","y":"\#(encode(raw.suffix(32)))"}"#
        let now = Date().timeIntervalSince1970
        let header = encode(Data(#"{"alg":"ES256","typ":"JWT","jwk":\#(jwk)}"#.utf8))
        let claims = encode(Data(#"{"iss":"portcullis","sub":"alice","aud":"ui:portcullis","iat":\#(Int(now - 300)),"nbf":\#(Int(now - 300)),"exp":\#(Int(now + seconds)),"jti":"test","access":[]}"#.utf8))
        let signature = try key.signature(for: Data("\(header).\(claims)".utf8)).rawRepresentation
        return "\(header).\(claims).\(encode(signature))"
    }

    @Test("an expired session cookie goes back to the login page (the same cookie unexpired is a session)")
    func expiredSession() async throws {
        let jar = deployment.directory + "/expiry-cookies"
        func cookieJar(_ token: String) throws {
            try Data("127.0.0.1\tFALSE\t/ui\tFALSE\t0\tportcullis_ui\t\(token)\n".utf8).write(to: URL(fileURLWithPath: jar))
        }
        try cookieJar(try sessionToken(expiresIn: 600))
        let valid = try await browse("/ui/", cookies: jar)
        #expect(valid.hasPrefix("HTTP/1.1 200") && valid.contains(">alice<"), "a well-signed session was refused: \(valid.prefix(400))")
        try cookieJar(try sessionToken(expiresIn: -60))
        let expired = try await browse("/ui/", cookies: jar)
        #expect(expired.hasPrefix("HTTP/1.1 303") && expired.lowercased().contains("location: /ui/login"), "\(expired.prefix(400))")
    }
}
