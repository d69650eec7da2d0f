import Foundation
import Testing
import TestSupport

/// docker login's refresh-token sequence, OAuth2 POST, robots, filtered catalog and throttling.
@Suite("token server protocol completeness")
struct ProtocolCompletenessTests {
    static let users = ["alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret", "dave": "dave-secret", "erin": "erin-secret"]
    static let setup = Task {
        try await Deployment.start(
            users: users,
            rules: """
                  - {account: carol, type: registry, name: catalog, actions: []}
                  - {account: "*", name: "${account}/**", actions: [pull, push, delete]}
                """,
            extraConfiguration: """
                throttling:
                  max_failures: 3
                  max_failures_per_address: 1000
                  window: 600
                  cooldown: 600
                """)
    }

    func json(_ result: CommandResult) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
        return try #require(object, "not a JSON object: \(result)")
    }

    func post(_ deployment: Deployment, _ form: [String: String]) async throws -> CommandResult {
        var arguments = ["-w", "\n%{http_code}"]
        for (key, value) in form.sorted(by: { $0.key < $1.key }) { arguments += ["--data-urlencode", "\(key)=\(value)"] }
        return try await deployment.curl(arguments, path: "/token")
    }

    /// Splits `-w "\n%{http_code}"` output into body and status.
    func split(_ result: CommandResult) -> (body: [String: Any], status: String) {
        let text = result.standardOutput
        let newline = text.lastIndex(of: "\n") ?? text.endIndex
        let body = (try? JSONSerialization.jsonObject(with: Data(text[..<newline].utf8)) as? [String: Any]) ?? [:]
        return (body, newline < text.endIndex ? String(text[text.index(after: newline)...]) : "")
    }

    @Test("docker login's sequence: GET with offline_token returns a refresh token, and POST refresh grants redeem it for working access tokens")
    func dockerLoginSequence() async throws {
        let deployment = try await Self.setup.value
        let login = try await deployment.curl(["-u", deployment.credentials("alice")], path: "/token?account=alice&client_id=docker&offline_token=true&service=portcullis")
        let loginBody = try json(login)
        let refresh = try #require(loginBody["refresh_token"] as? String, "\(login)")
        #expect(loginBody["token"] is String)

        let plain = try json(try await deployment.curl(["-u", deployment.credentials("alice")], path: "/token?account=alice&service=portcullis"))
        #expect(plain["refresh_token"] == nil, "a refresh token without offline_token")

        let grant = await split(try post(deployment, [
            "grant_type": "refresh_token", "refresh_token": refresh, "service": "portcullis", "client_id": "docker",
            "scope": "repository:alice/app:pull,push",
        ]))
        #expect(grant.status == "200")
        let access = try #require(grant.body["access_token"] as? String)
        #expect(grant.body["scope"] as? String == "repository:alice/app:pull,push")
        #expect(grant.body["expires_in"] as? Int == 300)
        let tags = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: Bearer \(access)"], path: "/v2/alice/app/tags/list")
        #expect(tags.standardOutput == "404", "the access token must pass Portcullis (the repository does not exist yet)")

        // A refresh token is not an access token.
        let misuse = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: Bearer \(refresh)"], path: "/v2/alice/app/tags/list")
        #expect(misuse.standardOutput == "401")
    }

    @Test("OAuth2 password grants return a refresh token only with access_type=offline, and errors use OAuth2 codes")
    func oauthPasswordGrantAndErrors() async throws {
        let deployment = try await Self.setup.value
        let offline = await split(try post(deployment, ["grant_type": "password", "username": "bob", "password": "bob-secret", "service": "portcullis", "client_id": "test", "access_type": "offline", "scope": "repository:bob/x:pull"]))
        #expect(offline.status == "200")
        #expect(offline.body["refresh_token"] is String)
        #expect(offline.body["access_token"] is String)
        let online = await split(try post(deployment, ["grant_type": "password", "username": "bob", "password": "bob-secret", "service": "portcullis", "client_id": "test"]))
        #expect(online.status == "200")
        #expect(online.body["refresh_token"] == nil)

        let unsupported = await split(try post(deployment, ["grant_type": "client_credentials", "service": "portcullis"]))
        #expect(unsupported.status == "400")
        #expect(unsupported.body["error"] as? String == "unsupported_grant_type")

        let unknown = await split(try post(deployment, ["grant_type": "refresh_token", "refresh_token": "not-a-token", "service": "portcullis"]))
        #expect(unknown.status == "401")
        #expect(unknown.body["error"] as? String == "invalid_grant")
    }

    @Test("removing a user revokes their refresh tokens at once")
    func refreshAfterUserRemoved() async throws {
        let deployment = try await Self.setup.value
        let login = try json(try await deployment.curl(["-u", deployment.credentials("dave")], path: "/token?account=dave&client_id=docker&offline_token=true&service=portcullis"))
        let refresh = try #require(login["refresh_token"] as? String)
        let before = await split(try post(deployment, ["grant_type": "refresh_token", "refresh_token": refresh, "service": "portcullis"]))
        #expect(before.status == "200")

        var remaining = Self.users
        remaining["dave"] = nil
        try deployment.writeUsers(remaining)
        var status = ""
        for _ in 0..<50 {
            status = await split(try post(deployment, ["grant_type": "refresh_token", "refresh_token": refresh, "service": "portcullis"])).status
            if status == "401" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(status == "401", "the refresh token still works after dave was removed")
        #expect(deployment.gateway.log.contains("refresh token refused"))
    }

    @Test("a robot created with the CLI pushes with skopeo, lists tags with curl -u, and stops working right after robot revoke, its refresh tokens included")
    func robotLifecycle() async throws {
        let deployment = try await Self.setup.value
        let created = try await GatewayUser.portcullis(["robot", "create", "ci", "--config", deployment.configurationPath, "--expires", "1d", "--label", "team=platform"]).runInBackground().checked()
        let secret = created.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.count >= 40)
        let stored = try String(contentsOfFile: deployment.directory + "/robots.json", encoding: .utf8)
        #expect(!stored.contains(secret), "the robots file holds the secret itself")
        let listed = try await GatewayUser.portcullis(["robot", "list", "--config", deployment.configurationPath]).runInBackground().checked()
        #expect(listed.standardOutput.contains("ci\texpires ") && listed.standardOutput.contains("team=platform"))

        let (layout, _) = try writeImage(named: "robot", content: "robot")
        var push = try await deployment.push(layout, credentials: "ci:\(secret)", to: "ci/app:v1")
        for _ in 0..<20 where !push.succeeded {
            // Portcullis picks the robots file up within a second.
            try await Task.sleep(for: .milliseconds(250))
            push = try await deployment.push(layout, credentials: "ci:\(secret)", to: "ci/app:v1")
        }
        #expect(push.succeeded, "\(push)")
        let tags = try await deployment.curl(["-u", "ci:\(secret)"], path: "/v2/ci/app/tags/list")
        #expect(tags.standardOutput.contains("\"v1\""), "\(tags)")
        // docker login with the robot's secret: its refresh token is revoked with the robot.
        let login = try json(try await deployment.curl(["-u", "ci:\(secret)"], path: "/token?account=ci&client_id=docker&offline_token=true&service=portcullis"))
        let refresh = try #require(login["refresh_token"] as? String)
        #expect(await split(try post(deployment, ["grant_type": "refresh_token", "refresh_token": refresh, "service": "portcullis"])).status == "200")

        _ = try await GatewayUser.portcullis(["robot", "revoke", "ci", "--config", deployment.configurationPath]).runInBackground().checked()
        var status = ""
        for _ in 0..<50 {
            status = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", "ci:\(secret)"], path: "/v2/ci/app/tags/list").standardOutput
            if status == "401" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(status == "401", "the robot still works after revoke")
        let redeemed = await split(try post(deployment, ["grant_type": "refresh_token", "refresh_token": refresh, "service": "portcullis"]))
        #expect(redeemed.status == "401", "the robot's refresh token still works after revoke: \(redeemed)")
    }

    @Test("a robot logs in at once after robot create returns: its first login re-reads the changed robots file instead of counting failures toward the throttle; the secret is printed before the note")
    func robotWorksRightAfterCreate() async throws {
        let deployment = try await Self.setup.value
        // Both streams into one pipe, as a script that captures 2>&1 sees them.
        let created = try await GatewayUser.portcullisMergingOutput(
            ["robot", "create", "eager", "--config", deployment.configurationPath, "--expires", "1d"]
        ).runInBackground().checked()
        let lines = created.standardOutput.split(separator: "\n")
        #expect(lines.count == 2 && lines[0].count >= 40 && lines[1].hasPrefix("robot \"eager\" created"), "\(created)")
        let secret = String(lines.first ?? "")
        // At once, and more often than max_failures (3): every login succeeds.
        for attempt in 1...4 {
            let status = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", "eager:\(secret)"], path: "/token?service=portcullis")
            #expect(status.standardOutput == "200", "login \(attempt) right after robot create")
        }
        let failures = deployment.gateway.log.split(separator: "\n").filter { $0.contains("authentication failed") && $0.contains("account=eager") }
        #expect(failures.isEmpty, "\(failures)")
    }

    @Test("robot create run by root keeps the robots file's owner, so the unprivileged Portcullis reads the new robot at once")
    func robotCreatedByRootStaysReadable() async throws {
        let deployment = try await Self.setup.value
        let robots = deployment.directory + "/robots.json"
        _ = try await GatewayUser.portcullis(["robot", "create", "owner-a", "--config", deployment.configurationPath, "--expires", "1d"]).runInBackground().checked()
        func owner() throws -> Int { (try FileManager.default.attributesOfItem(atPath: robots)[.ownerAccountID] as? NSNumber)?.intValue ?? -1 }
        #expect(try owner() == GatewayUser.id || !GatewayUser.dropsPrivileges)
        let reloads = deployment.gateway.log.components(separatedBy: "configuration reloaded").count
        let created = try await Command(try portcullisBinary(), ["robot", "create", "owner-b", "--config", deployment.configurationPath, "--expires", "1d"]).runInBackground().checked()
        let secret = created.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try owner() == GatewayUser.id || !GatewayUser.dropsPrivileges, "root's robot create gave robots.json to root")
        let log = await deployment.gateway.log(once: {
            $0.components(separatedBy: "configuration reloaded").count > reloads || $0.contains("configuration change refused")
        }, timeout: .seconds(30))
        #expect(!log.contains("configuration change refused"), "\(log)")
        let token = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", "owner-b:\(secret)"], path: "/token?service=portcullis")
        #expect(token.standardOutput == "200")
    }

    @Test("the catalog is filtered per account and paginated with n, last and Link; a rule with actions [] refuses it")
    func filteredCatalogPagination() async throws {
        let deployment = try await Self.setup.value
        let (layout, _) = try writeImage(named: "cat", content: "catalog")
        for (account, repository) in [("alice", "alice/c1"), ("alice", "alice/c2"), ("alice", "alice/c3"), ("bob", "bob/c1")] {
            let push = try await deployment.push(layout, credentials: deployment.credentials(account), to: "\(repository):v1")
            #expect(push.succeeded, "\(push)")
        }
        let first = try await deployment.curl(["-i", "-u", deployment.credentials("alice")], path: "/v2/_catalog?n=2")
        let firstBody = String(first.standardOutput.split(separator: "\r\n\r\n", maxSplits: 1).last ?? "")
        #expect(firstBody.hasPrefix(#"{"repositories":["alice/c1","alice/c2"]}"#), "\(first)")
        #expect(first.standardOutput.contains(#"Link: </v2/_catalog?last=alice%2Fc2&n=2>; rel="next""#), "\(first)")

        let second = try await deployment.curl(["-i", "-u", deployment.credentials("alice")], path: "/v2/_catalog?last=alice%2Fc2&n=2")
        let secondBody = String(second.standardOutput.split(separator: "\r\n\r\n", maxSplits: 1).last ?? "")
        #expect(secondBody.contains(#""alice/c3""#), "\(second)")
        #expect(!second.standardOutput.contains("Link:"), "\(second)")
        #expect(!secondBody.contains("bob/"), "\(second)")

        let bob = try await deployment.curl(["-u", deployment.credentials("bob")], path: "/v2/_catalog")
        #expect(bob.standardOutput.contains("bob/c1") && !bob.standardOutput.contains("alice/"), "\(bob)")

        let carol = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("carol")], path: "/v2/_catalog")
        #expect(carol.standardOutput == "401")
    }

    @Test("a burst of wrong passwords is throttled with 429 and Retry-After while another account's correct login is unaffected")
    func bruteForceThrottled() async throws {
        let deployment = try await Self.setup.value
        var statuses: [String] = []
        for attempt in 0..<6 {
            let result = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", "erin:wrong-\(attempt)"], path: "/token?service=portcullis")
            statuses.append(result.standardOutput)
        }
        #expect(statuses.prefix(3).allSatisfy { $0 == "401" }, "\(statuses)")
        #expect(statuses.suffix(3).allSatisfy { $0 == "429" }, "\(statuses)")
        let throttled = try await deployment.curl(["-i", "-u", deployment.credentials("erin")], path: "/token?service=portcullis")
        #expect(throttled.standardOutput.hasPrefix("HTTP/1.1 429"), "even the right password waits out the cooling-off period: \(throttled)")
        #expect(throttled.standardOutput.lowercased().contains("retry-after: "))

        let other = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("bob")], path: "/token?service=portcullis")
        #expect(other.standardOutput == "200")
        #expect(deployment.gateway.log.contains("warning") && deployment.gateway.log.contains("authentication throttled"))
    }

    @Test("failed logins from one address are refused with 429 once max_failures_per_address is reached, whatever the account; another address is unaffected")
    func failuresPerAddressThrottled() async throws {
        let deployment = try await Deployment.start(
            users: ["alice": "alice-secret"], rules: #"  - {account: "*", name: "${account}/**", actions: [pull]}"#,
            extraConfiguration: "throttling:\n  max_failures: 100\n  max_failures_per_address: 4\n  window: 600\n  cooldown: 600")
        defer { deployment.stop() }
        var statuses: [String] = []
        for attempt in 0..<6 {
            // A new account each time: only the address links the attempts.
            let result = try await deployment.curl(
                ["-o", "/dev/null", "-w", "%{http_code}", "--interface", "127.0.0.3", "-u", "guess\(attempt):wrong"], path: "/token?service=portcullis")
            statuses.append(result.standardOutput)
        }
        #expect(statuses.prefix(4).allSatisfy { $0 == "401" } && statuses.suffix(2).allSatisfy { $0 == "429" }, "\(statuses)")
        let sameAddress = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "--interface", "127.0.0.3", "-u", deployment.credentials("alice")], path: "/token?service=portcullis")
        #expect(sameAddress.standardOutput == "429", "the throttled address logged in: \(sameAddress)")
        let otherAddress = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("alice")], path: "/token?service=portcullis")
        #expect(otherAddress.standardOutput == "200", "\(otherAddress)")
    }

    @Test("a request that asks to close the connection is answered with Connection: close on every path: forwarded on the event loop, answered there, and answered by the request loop")
    func connectionCloseIsAnnounced() async throws {
        let deployment = try await Self.setup.value
        let alice = deployment.credentials("alice")
        // The first authenticated request is decided by the request loop; the second, with the
        // credential cached, is forwarded on the event loop; /v2/ without credentials and
        // /healthz are answered by Portcullis itself.
        let requests: [(String, [String])] = [
            ("/v2/alice/close/tags/list", ["-u", alice]), ("/v2/alice/close/tags/list", ["-u", alice]),
            ("/v2/alice/close/tags/list", ["-I", "-u", alice]), ("/v2/", []), ("/healthz", []),
            ("/token?service=portcullis&scope=repository:alice/close:pull", ["-u", alice]),
        ]
        for (path, arguments) in requests {
            let result = try await deployment.curl(["-D", "-", "-o", "/dev/null", "-H", "Connection: close"] + arguments, path: path)
            let headers = result.standardOutput.lowercased().split(separator: "\r\n")
            #expect(headers.first?.hasPrefix("http/1.1 ") == true, "\(path): \(result)")
            #expect(headers.contains("connection: close"), "\(path) \(arguments): no Connection: close in \(result.standardOutput.debugDescription)")
        }
    }
}
