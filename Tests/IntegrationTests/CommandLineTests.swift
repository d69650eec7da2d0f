import Foundation
import Policy
import Testing
import TestSupport

/// The `portcullis` CLI, run as users run it.
@Suite("portcullis command line")
struct CommandLineTests {
    static let vectorA = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEvHYhlAsBxsflU0vWpnThACFbWwOD
        zkdekGT3C9Od0UlkrEbhOJaAdQ0rLAgFrciTqSyrySJlInnmJkLZfCy3kA==
        -----END PUBLIC KEY-----

        """
    static let vectorB = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtCPRHPYP0cra5vyNtM+5U8PyVws8
        VYEe/7EMBn2TBBAAJf1cMHbwzrmvn1Ttbh4JTDM+SNb6wsRh4O4gz27n7w==
        -----END PUBLIC KEY-----

        """

    func temporaryFile(_ contents: String, name: String = "file") throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID().uuidString.prefix(8))-\(name)").path
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A directory with a fresh key pair (`keys generate`) and `portcullis.yaml` holding `yaml`.
    func keyedConfiguration(_ name: String, _ yaml: String) throws -> (directory: String, path: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))").path
        _ = try Command(try portcullisBinary(), ["keys", "generate", "--out", directory]).run().checked()
        let path = directory + "/portcullis.yaml"
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: path))
        return (directory, path)
    }

    @Test("keys id prints the shared test vectors exactly, and registry-3.0 unsupported for EC keys")
    func keyIdentifierVectors() throws {
        let a = try Command(try portcullisBinary(), ["keys", "id", try temporaryFile(Self.vectorA)]).run().checked()
        #expect(a.standardOutput.hasPrefix("""
            libtrust 76YZ:WMPG:5GWO:3MZQ:TYLS:JB7X:BHVF:YMDE:BBLS:2EHS:BRQ4:HW7N
            rfc7638 coWmBz-pQUo6grr-BnBIR_sDB-Gy33xHeXi1EaJZtA8
            registry-3.1 coWmBz-pQUo6grr-BnBIR_sDB-Gy33xHeXi1EaJZtA8
            registry-3.0 unsupported: 
            """), "\(a)")
        let b = try Command(try portcullisBinary(), ["keys", "id", try temporaryFile(Self.vectorB)]).run().checked()
        #expect(b.standardOutput.hasPrefix("""
            libtrust BM36:Y7K7:S2XB:R572:ARVS:YDFS:2DNZ:5CDA:Q5FB:Y3LW:JG6K:XV6I
            rfc7638 MqU9qh82xKLr94NtaCch1Ixp_psDKup8IFNdRnLnegI
            registry-3.1 YR-MZbn2nZqZn450jAq_ea9cjqq-xRJFv2YAsVzB8-4
            """), "\(b)")
        #expect(b.standardOutput.contains("xx0BcA-wMohw8atYDJOe6peGModklG2wRHBlXHMvl0M"))
    }

    @Test("keys generate refuses to overwrite existing keys without --force")
    func keysGenerateKeepsExistingFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString.prefix(8))").path
        _ = try Command(try portcullisBinary(), ["keys", "generate", "--out", directory, "--algorithm", "rs256"]).run().checked()
        let before = try String(contentsOfFile: directory + "/token.key", encoding: .utf8)
        #expect(before.contains("PRIVATE KEY"))
        let again = try Command(try portcullisBinary(), ["keys", "generate", "--out", directory]).run()
        #expect(again.status != 0)
        #expect(again.standardError.contains("already exists"))
        #expect(try String(contentsOfFile: directory + "/token.key", encoding: .utf8) == before)
        let ids = try Command(try portcullisBinary(), ["keys", "id", directory + "/token.crt"]).run().checked()
        let rfc = ids.standardOutput.split(separator: "\n").first { $0.hasPrefix("rfc7638 ") }?.dropFirst(8)
        #expect(ids.standardOutput.contains("registry-3.0 \(rfc ?? "missing")"), "RSA keys have a registry-3.0 kid equal to the RFC 7638 one: \(ids)")
    }

    @Test("check-config lists every problem with its key path, including unknown keys")
    func checkConfigReportsEveryProblem() throws {
        let path = try temporaryFile(
            """
            listen: 127.0.0.1:99999
            public_url: ftp://example
            colour: blue
            tls: {certificate: missing.crt, key: missing.key}
            h2c: true
            upstream:
              url: http://127.0.0.1:5001
              registry_version: "4"
              key_hint: jwks
              service: registry
              issuer: portcullis
            token:
              service: portcullis
              issuer: portcullis
              key: missing.key
              jwks_path: /token
            rules:
              - {account: admin, name: "/[unclosed/", actions: ["*"]}
              - {account: admin, name: "**", actions: [pull, fly]}
            retention: {push_times: no-such-directory/push-times.log, keep: forever}
            """, name: "bad.yaml")
        let result = try Command(try portcullisBinary(), ["check-config", "--config", path]).run()
        #expect(result.status == 1)
        for expected in [
            "listen: must be host:port", "public_url: must be an http:// or https:// URL", "colour: unknown key",
            "upstream.registry_version: must be one of 2.8, 3.0, 3.1", "token.key: file", "rules[0]:", "rules[1]:",
            "h2c: applies to a plain listener only", "token.jwks_path: must be a path starting with /",
            "retention.push_times: directory", "retention.keep: unknown key",
        ] {
            #expect(result.standardError.contains(expected), "missing \"\(expected)\" in:\n\(result.standardError)")
        }
    }

    @Test("policy explain names the deciding rule for an account with labels, any value of a multi-valued label matching, and exits 1 when not granted in full")
    func policyExplain() throws {
        let (directory, path) = try keyedConfiguration("explain", """
            listen: 127.0.0.1:5000
            public_url: http://127.0.0.1:5000
            upstream: {url: "http://127.0.0.1:5001", registry_version: "2.8", key_hint: x5c, service: registry, issuer: portcullis}
            token: {service: portcullis, issuer: portcullis, key: token.key, certificate: token.crt}
            rules:
              - {account: "ci:**", name: "${labels:project_path}/**", labels: {ref_protected: "true"}, actions: [pull, push, delete]}
              - {account: "*", name: "platform/**", labels: {group: platform}, actions: [pull, push]}
              - {account: "*", name: "**", actions: [pull]}
            """)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let binary = try portcullisBinary()
        let granted = try Command(
            binary, ["policy", "explain", "--config", path, "--account", "alice", "--label", "group=team-a", "--label", "group=platform", "repository:platform/tool:pull,push"]
        ).run()
        #expect(granted.status == 0, "\(granted)")
        #expect(granted.standardOutput.contains("labels: group=team-a|platform"), "\(granted)")
        #expect(granted.standardOutput.contains("rule #2"), "\(granted)")
        let ci = try Command(
            binary, ["policy", "explain", "--config", path, "--account", "ci:team-a/app", "--label", "project_path=team-a/app", "--label", "ref_protected=false",
                     "repository:team-a/app/cache:pull,delete"]
        ).run()
        #expect(ci.status == 1, "an unprotected ref gets no delete: \(ci)")
        #expect(ci.standardOutput.contains("rule #3") && ci.standardOutput.contains("not granted in full"), "\(ci)")
        // Only what is missing: pull is granted, delete is not.
        #expect(ci.standardOutput.contains("(missing repository:team-a/app/cache:delete)"), "\(ci)")
        let widened = try Command(
            binary, ["policy", "explain", "--config", path, "--account", "alice", "--label", "group=platform", "--grant", "repository", "repository:platform/tool:pull"]
        ).run()
        #expect(widened.standardOutput.contains("granted pull,push"), "\(widened)")
        let bad = try Command(binary, ["policy", "explain", "--config", path, "--account", "alice", "repository:team/app"]).run()
        #expect(bad.status == 2 && bad.standardError.contains("repository:team/app"), "\(bad)")
    }

    @Test("check-config names each bad content rule with its key path (a pattern that does not compile, no repositories, an unknown key, a signed_by key file missing or not a public key); policy explain --tag says which content rule applies and whether the tag is immutable")
    func contentRulesInCheckConfigAndExplain() throws {
        let base = """
            listen: 127.0.0.1:5000
            public_url: http://127.0.0.1:5000
            upstream: {url: "http://127.0.0.1:5001", registry_version: "2.8", key_hint: x5c, service: registry, issuer: portcullis}
            token: {service: portcullis, issuer: portcullis, key: token.key, certificate: token.crt}
            rules:
              - {account: "*", name: "**", actions: [pull]}

            """
        let (badDirectory, bad) = try keyedConfiguration("content-bad", base + """
            content:
              - repositories: ["release/**"]
                immutable_tags: ["v*", "/[unclosed/"]
              - immutable_tags: ["*"]
              - repositories: ["prod/**"]
                immutable_tags: ["*"]
                signed_by: [keys/release.pub, token.crt]
                frozen: true
            """)
        defer { try? FileManager.default.removeItem(atPath: badDirectory) }
        let binary = try portcullisBinary()
        let checked = try Command(binary, ["check-config", "--config", bad]).run()
        #expect(checked.status == 1, "\(checked)")
        for expected in [
            "content[0].immutable_tags[1]:", "content[1].repositories: is required", "content[2].frozen: unknown key",
            "content[2].signed_by[0]: file", "content[2].signed_by[1]:",
        ] {
            #expect(checked.standardError.contains(expected), "missing \"\(expected)\" in:\n\(checked.standardError)")
        }

        let (directory, path) = try keyedConfiguration("content-explain", base + """
            content:
              - repositories: ["release/**"]
                immutable_tags: ["v*"]
            """)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let protected = try Command(binary, ["policy", "explain", "--config", path, "--account", "alice", "--tag", "v1.0", "repository:release/app:pull"]).run()
        #expect(protected.standardOutput.contains(
            "content release/app: content[0] (repositories: release/**; immutable_tags: v*); tag v1.0 is immutable (immutable_tags v*)"), "\(protected)")
        let moving = try Command(binary, ["policy", "explain", "--config", path, "--account", "alice", "--tag", "latest", "repository:release/app:pull", "repository:other/app:pull"]).run()
        #expect(moving.standardOutput.contains("tag latest is not immutable"), "\(moving)")
        #expect(moving.standardOutput.contains("content other/app: no content rule applies"), "\(moving)")
    }

    @Test("robot create and revoke run at the same time lose no robot: every one created is listed, every one revoked is gone")
    func concurrentRobotCommandsLoseNothing() async throws {
        let (directory, path) = try keyedConfiguration("robots", """
            listen: 127.0.0.1:5000
            public_url: http://127.0.0.1:5000
            upstream: {url: "http://127.0.0.1:5001", registry_version: "2.8", key_hint: x5c, service: registry, issuer: portcullis}
            token: {service: portcullis, issuer: portcullis, key: token.key, certificate: token.crt}
            users: {robots: robots.json}
            rules:
              - {account: "*", name: "**", actions: [pull]}
            """)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let binary = try portcullisBinary()
        let names = (0..<12).map { "robot-\($0)" }
        try await withThrowingTaskGroup(of: CommandResult.self) { group in
            for name in names {
                group.addTask { try await Command(binary, ["robot", "create", name, "--config", path, "--expires", "1d"]).runInBackground() }
            }
            for try await created in group { #expect(created.status == 0, "\(created)") }
        }
        let listed = try Command(binary, ["robot", "list", "--config", path]).run().checked()
        let listedNames = Set(listed.standardOutput.split(separator: "\n").map { String($0.prefix { $0 != "\t" }) })
        #expect(listedNames == Set(names), "\(listed.standardOutput)")

        let revoked = names.filter { $0.hasSuffix("0") || $0.hasSuffix("1") || $0.hasSuffix("5") }
        try await withThrowingTaskGroup(of: CommandResult.self) { group in
            for name in revoked {
                group.addTask { try await Command(binary, ["robot", "revoke", name, "--config", path]).runInBackground() }
            }
            group.addTask { try await Command(binary, ["robot", "create", "late", "--config", path, "--expires", "1d"]).runInBackground() }
            for try await result in group { #expect(result.status == 0, "\(result)") }
        }
        let after = try Command(binary, ["robot", "list", "--config", path]).run().checked()
        let afterNames = Set(after.standardOutput.split(separator: "\n").map { String($0.prefix { $0 != "\t" }) })
        #expect(afterNames == Set(names).subtracting(revoked).union(["late"]), "\(after.standardOutput)")
    }

    @Test("check-config names each bad upstreams entry with its path: two names alike, shares over 100%, a pattern claimed twice, two primaries, a key hint the version cannot read")
    func checkConfigReportsUpstreamProblems() throws {
        let (directory, path) = try keyedConfiguration("upstreams", """
            listen: 127.0.0.1:5000
            public_url: http://127.0.0.1:5000
            upstreams:
              - {name: v2, url: "http://127.0.0.1:5001", registry_version: "2.8", key_hint: kid, service: registry, issuer: portcullis, primary: true}
              - {name: v3, url: "http://127.0.0.1:5002", registry_version: "3.1", key_hint: kid, service: registry, issuer: portcullis, weight: 60, repositories: ["team-a/**"]}
              - {name: canary, url: "http://127.0.0.1:5003", registry_version: "3.1", key_hint: x5c, service: registry, issuer: portcullis, weight: 50, repositories: ["team-a/**"]}
              - {name: canary, url: "http://127.0.0.1:5004", service: registry, issuer: portcullis, weight: 5, primary: true}
            token: {service: portcullis, issuer: portcullis, key: token.key, certificate: token.crt}
            rules:
              - {account: "*", name: "**", actions: [pull]}
            """)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try Command(try portcullisBinary(), ["check-config", "--config", path]).run()
        #expect(result.status == 1)
        for expected in [
            "upstreams[3].name: \"canary\" names two upstreams", "upstreams: the weights add up to 110%",
            "upstreams[2].repositories: \"team-a/**\" is claimed by both v3 and canary", "upstreams: 2 upstreams say primary: true",
            "upstreams[3]: the primary takes every repository",
        ] {
            #expect(result.standardError.contains(expected), "missing \"\(expected)\" in:\n\(result.standardError)")
        }
        // The pinned version's key-format refusal applies per upstream: registry 3.0 computes no
        // kid Portcullis can match for an EC key.
        let hint = directory + "/hint.yaml"
        try Data(
            """
            listen: 127.0.0.1:5000
            public_url: http://127.0.0.1:5000
            upstreams:
              - {name: v2, url: "http://127.0.0.1:5001", registry_version: "2.8", key_hint: kid, service: registry, issuer: portcullis, primary: true}
              - {name: v3, url: "http://127.0.0.1:5002", registry_version: "3.0", key_hint: kid, service: registry, issuer: portcullis, weight: 10}
            token: {service: portcullis, issuer: portcullis, key: token.key, certificate: token.crt}
            rules: []
            """.utf8
        ).write(to: URL(fileURLWithPath: hint))
        let refused = try Command(try portcullisBinary(), ["check-config", "--config", hint]).run()
        #expect(refused.status == 1 && refused.standardError.contains("upstreams[1].key_hint:") && !refused.standardError.contains("upstreams[0]"), "\(refused)")
        let both = directory + "/both.yaml"
        try Data(
            """
            listen: 127.0.0.1:5000
            public_url: http://127.0.0.1:5000
            upstream: {url: "http://127.0.0.1:5001", service: registry, issuer: portcullis}
            upstreams: [{name: a, url: "http://127.0.0.1:5001", service: registry, issuer: portcullis, primary: true}]
            token: {service: portcullis, issuer: portcullis, key: token.key, certificate: token.crt}
            rules: []
            """.utf8
        ).write(to: URL(fileURLWithPath: both))
        let alternatives = try Command(try portcullisBinary(), ["check-config", "--config", both]).run()
        #expect(alternatives.standardError.contains("upstreams: upstream and upstreams are alternatives"), "\(alternatives)")
    }

    @Test("check-config lists in one run the problems that only the files can show beside the file's own (a key hint, ui, an OIDC issuer clash), and says what it could not check when a section is missing")
    func checkConfigReportsEverythingInOneRun() throws {
        let (directory, path) = try keyedConfiguration("one-run", """
            listen: 127.0.0.1:5000
            public_url: http://127.0.0.1:5000
            upstreams:
              - {name: v2, url: "http://127.0.0.1:5001", registry_version: "2.8", key_hint: kid, service: registry, issuer: portcullis, primary: true}
              - {name: v3, url: "http://127.0.0.1:5002", registry_version: "3.0", key_hint: kid, service: registry, issuer: portcullis, weight: 70}
              - {name: v31, url: "http://127.0.0.1:5003", registry_version: "3.1", key_hint: kid, service: registry, issuer: portcullis, weight: 40}
            token: {service: portcullis, issuer: "https://portcullis.example", key: token.key, certificate: token.crt}
            users:
              oidc: [{issuer: "https://portcullis.example", audiences: [portcullis], account: "ci:${claims:sub}", discovery: true}]
            ui: {enabled: maybe}
            rules:
              - {account: "*", name: "**", actions: [pull]}
            """)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try Command(try portcullisBinary(), ["check-config", "--config", path]).run()
        #expect(result.status == 1)
        for expected in [
            "upstreams: the weights add up to 110%", "upstreams[1].key_hint:", "ui.enabled: must be true or false",
            "users.oidc: issuer \"https://portcullis.example\" is Portcullis's own token.issuer",
        ] {
            #expect(result.standardError.contains(expected), "missing \"\(expected)\" in:\n\(result.standardError)")
        }
        #expect(result.standardError.contains(": 4 problems\n") && !result.standardError.contains("not checked"), "\(result)")

        // Without a token section nothing can be minted: the key checks cannot run, and it says so.
        let blocked = directory + "/blocked.yaml"
        try Data(
            """
            listen: 127.0.0.1:5000
            public_url: http://127.0.0.1:5000
            upstream: {url: "http://127.0.0.1:5002", registry_version: "3.0", key_hint: kid, service: registry, issuer: portcullis}
            ui: {enabled: maybe}
            rules: []
            """.utf8
        ).write(to: URL(fileURLWithPath: blocked))
        let partial = try Command(try portcullisBinary(), ["check-config", "--config", blocked]).run()
        #expect(partial.status == 1 && partial.standardError.contains("token: is required") && partial.standardError.contains("ui.enabled"), "\(partial)")
        #expect(partial.standardError.contains("not checked: the files the configuration names") && partial.standardError.contains("until token is valid"), "\(partial)")
    }

    @Test("check-config's summary names every upstream with its version, key hint and share, not only the primary")
    func checkConfigSummaryListsEveryUpstream() throws {
        let (directory, path) = try keyedConfiguration("summary", """
            listen: 127.0.0.1:5000
            public_url: http://127.0.0.1:5000
            upstreams:
              - {name: v2, url: "http://127.0.0.1:5001", registry_version: "2.8", key_hint: kid, service: registry, issuer: portcullis, primary: true}
              - {name: v31, url: "http://127.0.0.1:5002", registry_version: "3.1", key_hint: x5c, service: registry, issuer: portcullis, weight: 40}
              - {name: pinned, url: "http://127.0.0.1:5003", registry_version: "3.1", key_hint: kid, service: registry, issuer: portcullis, repositories: ["team-a/**"]}
            token: {service: portcullis, issuer: portcullis, key: token.key, certificate: token.crt}
            rules:
              - {account: "*", name: "**", actions: [pull]}
            """)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try Command(try portcullisBinary(), ["check-config", "--config", path]).run()
        #expect(result.status == 0, "\(result)")
        for expected in [
            "upstream v2 http://127.0.0.1:5001, registry 2.8", "(primary)", "upstream v31 http://127.0.0.1:5002, registry 3.1", "(40% of repositories)",
            "upstream pinned http://127.0.0.1:5003, registry 3.1", "(team-a/**)",
        ] {
            #expect(result.standardOutput.contains(expected), "missing \"\(expected)\" in:\n\(result.standardOutput)")
        }
    }

    @Test("check-config names each bad users.ldap key with its path")
    func checkConfigReportsLDAPProblems() throws {
        let path = try temporaryFile(
            """
            listen: 127.0.0.1:5000
            public_url: http://127.0.0.1:5000
            upstream: {url: "http://127.0.0.1:5001", registry_version: "2.8", key_hint: kid, service: registry, issuer: portcullis}
            token: {service: portcullis, issuer: portcullis, key: missing.key}
            users:
              ldap:
                url: http://127.0.0.1:389
                start_tls: maybe
                bind_dn: "uid=alice,ou=people,dc=example,dc=org"
                search: {base: "ou=people,dc=example,dc=org", filter: "uid=${username}", bind_dn: "cn=reader", bind_password_file: missing.pw}
                groups: {member_of: true, filter: "(member=${dn})"}
                cache_lifetime: 0
                colour: blue
            rules:
              - {account: "*", name: "${labels:group}/**", actions: [pull]}
            """, name: "bad-ldap.yaml")
        let result = try Command(try portcullisBinary(), ["check-config", "--config", path]).run()
        #expect(result.status == 1)
        for expected in [
            "users.ldap.url: must be one ldap:// or ldaps:// URL", "users.ldap.start_tls: must be true or false",
            "users.ldap.bind_dn: must contain ${username}", "users.ldap.search.filter: must be a parenthesised LDAP filter",
            "users.ldap.search.bind_password_file: file", "users.ldap.search: bind_dn and search are alternatives",
            "users.ldap.groups: member_of: true takes the groups from the account entry", "users.ldap.cache_lifetime:",
            "users.ldap.colour: unknown key",
        ] {
            #expect(result.standardError.contains(expected), "missing \"\(expected)\" in:\n\(result.standardError)")
        }
    }

    @Test("token inspect names the key hint, the key ids of an embedded key, and each registry version's verdict")
    func tokenInspect() throws {
        let keyA = try PublicKeyMaterial(pem: Self.vectorA)
        let header = try JSONSerialization.data(withJSONObject: ["alg": "ES256", "jwk": keyA.jsonWebKey(kid: "a")])
        let payload = Data(#"{"iss":"x","sub":"alice","aud":["registry"],"exp":1,"access":[]}"#.utf8)
        func b64(_ data: Data) -> String {
            data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        let token = "\(b64(header)).\(b64(payload)).\(b64(Data([1, 2, 3])))"
        let result = try Command(try portcullisBinary(), ["token", "inspect", "-"], input: token).run().checked()
        let output = result.standardOutput
        #expect(output.contains("key hint: embedded jwk"))
        #expect(output.contains("libtrust 76YZ:WMPG:5GWO:3MZQ:TYLS:JB7X:BHVF:YMDE:BBLS:2EHS:BRQ4:HW7N"))
        #expect(output.contains("rfc7638 coWmBz-pQUo6grr-BnBIR_sDB-Gy33xHeXi1EaJZtA8"))
        #expect(output.contains("registry 2.8: rejected: 2.8 needs aud as a JSON string"), "\(output)")
        #expect(output.contains("registry 3.1: rejected: 3.x refuses an embedded jwk"), "\(output)")

        let key = try SigningKey(privateKeyPEM: try KeyGenerator.generate(.es256, now: Date()).privateKeyPEM)
        let libtrustToken = try TokenMinter(key: key, hint: .kid(.v2_8)).mint(
            TokenClaims(issuer: "x", subject: "a", audience: "registry", scopes: [], now: Date(), lifetime: 60, id: "1"))
        let libtrust = try Command(try portcullisBinary(), ["token", "inspect", libtrustToken]).run().checked().standardOutput
        #expect(libtrust.contains("key hint: kid \"\(key.identifiers.libtrust)\" (libtrust fingerprint)"))
        #expect(libtrust.contains("registry 2.8: accepted if a key in its rootcertbundle has this libtrust id"))
        #expect(libtrust.contains("registry 3.0: rejected: 3.0.x never matches a libtrust kid"), "\(libtrust)")
        #expect(libtrust.contains("registry 3.1: rejected: 3.1.x never matches a libtrust kid"), "\(libtrust)")
    }

    @Test(
        "token inspect describes x5c, registry-3.1 kid and jwks kid tokens",
        arguments: [
            ("x5c", "key hint: x5c (chain of 1 certificate)", "registry 3.0: accepted if the x5c chain leads to a certificate in its rootcertbundle"),
            ("kid-3.1", "(RFC 7638 thumbprint form)", "registry 2.8: rejected: 2.8 matches kid only as a libtrust fingerprint"),
            ("jwks", "key hint: kid \"my-key\" (opaque: only a jwks entry with this literal kid matches it)", "registry 3.1: accepted if a rootcertbundle key has this thumbprint"),
        ])
    func tokenInspectHints(_ hintName: String, _ hintLine: String, _ verdict: String) throws {
        let generated = try KeyGenerator.generate(.es256, now: Date())
        let key = try SigningKey(privateKeyPEM: generated.privateKeyPEM, certificateChainPEM: generated.certificatePEM)
        let hint: KeyHint = hintName == "x5c" ? .x5c : hintName == "jwks" ? .jwks(kid: "my-key") : .kid(.v3_1)
        let token = try TokenMinter(key: key, hint: hint).mint(
            TokenClaims(issuer: "x", subject: "a", audience: "registry", scopes: [], now: Date(), lifetime: 60, id: "1"))
        let output = try Command(try portcullisBinary(), ["token", "inspect", token]).run().checked().standardOutput
        #expect(output.contains(hintLine), "\(output)")
        #expect(output.contains(verdict), "\(output)")
        if hintName == "x5c" {
            #expect(output.contains("libtrust \(key.identifiers.libtrust)"))
            #expect(output.contains("registry-3.1 \(key.identifiers.registry31)"))
        }
    }

    /// A minimal configuration for registry 3.1 with `key_hint: jwks`, its key generated here.
    func jwksConfiguration() async throws -> (path: String, directory: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString.prefix(8))").path
        _ = try await Command(try portcullisBinary(), ["keys", "generate", "--out", directory + "/keys"]).runInBackground().checked()
        _ = try await Command(try portcullisBinary(), ["keys", "generate", "--out", directory + "/idp"]).runInBackground().checked()
        try Data("".utf8).write(to: URL(fileURLWithPath: directory + "/users.htpasswd"))
        let path = directory + "/portcullis.yaml"
        try Data("""
            listen: 127.0.0.1:5000
            public_url: https://registry.example.com
            upstream:
              url: http://127.0.0.1:5001
              registry_version: "3.1"
              key_hint: jwks
              jwks_kid: portcullis-2026
              service: registry
              issuer: portcullis
            token:
              service: portcullis
              issuer: portcullis
              key: keys/token.key
              certificate: keys/token.crt
            users:
              htpasswd: users.htpasswd
            rules:
              - {account: "*", name: "${account}/**", actions: [pull, push]}
            issuers:
              - issuer: https://idp.test
                audiences: [registry]
                certificates: [idp/token.crt]
            """.utf8).write(to: URL(fileURLWithPath: path))
        return (path, directory)
    }

    @Test("registry-config for key_hint jwks on 3.1 writes a JWKS with the configured kid, prints the jwks auth block, and warns about OTEL_TRACES_EXPORTER")
    func registryConfigJWKS() async throws {
        let (path, directory) = try await jwksConfiguration()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try await Command(try portcullisBinary(), ["registry-config", "--config", path, "--out", directory + "/trust"]).runInBackground().checked()
        #expect(result.standardOutput.contains("realm: https://registry.example.com/token"), "\(result)")
        #expect(result.standardOutput.contains("    jwks: \(directory)/trust/jwks.json"), "\(result)")
        #expect(result.standardError.contains("OTEL_TRACES_EXPORTER=none"), "\(result)")
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/trust/jwks.json"))) as? [String: Any]
        let keys = try #require(document?["keys"] as? [[String: Any]])
        let key = try SigningKey(privateKeyPEM: String(contentsOfFile: directory + "/keys/token.key", encoding: .utf8))
        #expect(keys.count == 1 && keys.first?["kid"] as? String == "portcullis-2026", "\(keys)")
        #expect(try PublicKeyMaterial(jsonWebKey: try #require(keys.first)) == key.publicKey)
    }

    @Test("token inspect --config verifies against the configured issuers and prints the effective grant; a token from another key fails with exit 1")
    func tokenInspectWithConfiguration() async throws {
        let (path, directory) = try await jwksConfiguration()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let key = try SigningKey(privateKeyPEM: String(contentsOfFile: directory + "/keys/token.key", encoding: .utf8))
        let claims = try TokenClaims(
            issuer: "portcullis", subject: "alice", audience: "portcullis",
            scopes: [Scope(parsing: "repository:alice/app:pull,push"), Scope(parsing: "repository:bob/app:pull")], now: Date(), lifetime: 300, id: "1")
        let token = try TokenMinter(key: key, hint: .kid(.v3_1)).mint(claims)
        let verified = try await Command(try portcullisBinary(), ["token", "inspect", token, "--config", path]).runInBackground()
        #expect(verified.succeeded, "\(verified)")
        #expect(verified.standardOutput.contains("verification: signature and claims valid (issuer \"portcullis\", Portcullis itself)"), "\(verified)")
        // Portcullis's own tokens were granted by its rules when issued: their claim is taken as is.
        #expect(verified.standardOutput.contains("effective grant: the access claim as is"), "\(verified)")
        let grantLines = verified.standardOutput.split(separator: "\n").drop { !$0.hasPrefix("effective grant") }.dropFirst()
        #expect(grantLines.contains { $0.contains("alice/app") } && grantLines.contains { $0.contains("bob/app") }, "\(verified)")

        // An external issuer's token: its claim ∩ the rules, decision by decision.
        let idpKey = try SigningKey(privateKeyPEM: String(contentsOfFile: directory + "/idp/token.key", encoding: .utf8))
        var idpClaims = claims
        idpClaims.iss = .init(value: "https://idp.test")
        idpClaims.aud = .init(value: ["registry"])
        let external = try await Command(
            try portcullisBinary(), ["token", "inspect", try TokenMinter(key: idpKey, hint: .kid(.v2_8)).mint(idpClaims), "--config", path]
        ).runInBackground()
        #expect(external.standardOutput.contains(#"verification: signature and claims valid (issuer "https://idp.test")"#), "\(external)")
        #expect(external.standardOutput.contains(#"effective grant: access claim ∩ rules for "alice""#), "\(external)")
        let decisions = external.standardOutput.split(separator: "\n").drop { !$0.hasPrefix("effective grant") }.dropFirst()
        #expect(decisions.count == 2, "\(external)")

        let stranger = try SigningKey(privateKeyPEM: try KeyGenerator.generate(.es256, now: Date()).privateKeyPEM)
        let forged = try TokenMinter(key: stranger, hint: .kid(.v3_1)).mint(claims)
        let refused = try await Command(try portcullisBinary(), ["token", "inspect", forged, "--config", path]).runInBackground()
        #expect(refused.status == 1)
        #expect(refused.standardOutput.contains("verification: FAILED: kid"), "\(refused)")
    }
}

@Suite("key hints against the real registry 2.8.2")
struct KeyHintTests {
    @Test("key_hint kid (a libtrust fingerprint for 2.8) is accepted by registry 2.8.2")
    func libtrustKidAccepted() async throws {
        let deployment = try await Deployment.start(users: ["alice": "alice-secret"], rules: "  - {account: \"*\", name: \"${account}/**\", actions: [\"*\"]}", keyHint: "kid")
        defer { deployment.stop() }
        let (layout, _) = try writeImage(named: "kid", content: "kid hint")
        let push = try await deployment.push(layout, credentials: deployment.credentials("alice"), to: "alice/kid:v1")
        #expect(push.succeeded, "\(push)")
        let doctor = try await Command(try portcullisBinary(), ["doctor", "--config", deployment.configurationPath]).runInBackground()
        #expect(doctor.status == 0, "\(doctor)")
    }
}
