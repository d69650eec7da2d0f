import Foundation
import Testing
import TestSupport

/// `users.ldap` end to end: a real slapd, real skopeo and curl, through Portcullis, against a
/// real docker-registry 2.8.2.
@Suite("LDAP accounts through Portcullis", .serialized)
final class LDAPAccountsTests {
    let ldapDirectory: String
    let ldap: LDAPServer
    let deployment: Deployment

    init() async throws {
        ldapDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-ldap-it-\(UUID().uuidString.prefix(8))").path
        ldap = try await LDAPServer.start(in: ldapDirectory)
        deployment = try await Deployment.start(
            users: ["hilda": "hilda-htpasswd-pw"],
            rules: """
                  - {account: "*", name: "platform/**", labels: {group: platform}, actions: [pull, push]}
                  - {account: "*", name: "${labels:group}/**", actions: [pull, push, delete]}
                  - {account: hilda, name: "hilda/**", actions: [pull, push]}
                """,
            usersConfiguration: """
                ldap:
                  url: \(ldap.url)
                  start_tls: true
                  ca: \(ldap.caPath)
                  bind_dn: "uid=${username},ou=people,dc=example,dc=org"
                  groups: {base: "ou=groups,dc=example,dc=org", filter: "(member=${dn})", attribute: cn, label: group}
                  cache_lifetime: 2
                  timeout: 2
                """)
    }

    deinit {
        deployment.stop()
        ldap.stop()
        try? FileManager.default.removeItem(atPath: ldapDirectory)
    }

    func ldapCredentials(_ name: String) -> String { "\(name):\(LDAPServer.passwords[name]!)" }

    @Test("skopeo pushes as an LDAP user where a group rule allows it and is refused where no group rule does")
    func skopeoPushFollowsGroupRules() async throws {
        let (layout, _) = try writeImage(named: "ldap", content: "pushed by an LDAP user")
        defer { try? FileManager.default.removeItem(atPath: layout) }
        let platform = try await deployment.push(layout, credentials: ldapCredentials("alice"), to: "platform/tool:v1")
        #expect(platform.succeeded, "\(platform)")
        let ownGroup = try await deployment.push(layout, credentials: ldapCredentials("alice"), to: "team-a/app:v1")
        #expect(ownGroup.succeeded, "\(ownGroup)")
        let otherGroup = try await deployment.push(layout, credentials: ldapCredentials("alice"), to: "team-b/app:v1")
        #expect(!otherGroup.succeeded, "alice is not in team-b: \(otherGroup)")
        let bobPlatform = try await deployment.push(layout, credentials: ldapCredentials("bob"), to: "platform/tool:v2")
        #expect(!bobPlatform.succeeded, "bob is not in platform: \(bobPlatform)")
        let tags = try await deployment.skopeo(["list-tags", "--tls-verify=false", "--creds", ldapCredentials("alice"), "docker://\(deployment.host)/team-a/app"])
        #expect(tags.succeeded && tags.standardOutput.contains("\"v1\""), "\(tags)")
        // The password never reaches a log line.
        #expect(!deployment.gateway.log.contains(LDAPServer.passwords["alice"]!))
        #expect(!deployment.auditLog.contains(LDAPServer.passwords["alice"]!))
    }

    @Test("the token endpoint grants an LDAP user the repositories of their groups, delete included, and nothing of other groups")
    func tokenEndpointGrantsByGroup() async throws {
        let answer = try await deployment.curl(
            ["-u", ldapCredentials("alice")], path: "/token?service=portcullis&scope=repository:team-a/app:pull,push,delete&scope=repository:team-b/app:pull")
        #expect(answer.succeeded)
        let token = try JSONSerialization.jsonObject(with: Data(answer.standardOutput.utf8)) as? [String: Any]
        let jwt = try #require(token?["token"] as? String, "\(answer)")
        let payload = try #require(decodeJWTPayload(jwt))
        let access = try #require(payload["access"] as? [[String: Any]])
        #expect(access.count == 1, "only team-a is granted: \(access)")
        #expect(access.first?["name"] as? String == "team-a/app")
        #expect(Set(access.first?["actions"] as? [String] ?? []) == ["pull", "push", "delete"])
    }

    @Test("a password changed in the directory takes effect once the cached login expires")
    func passwordChangeTakesEffectAfterTheCacheLifetime() async throws {
        let old = LDAPServer.passwords["bob"]!
        let first = try await status(["-u", "bob:\(old)"], "/v2/team-b/app/tags/list")
        #expect(first != 401, "bob logs in with his directory password")
        try await ldap.setPassword(of: "bob", to: "bob-new-pw")
        try await Task.sleep(for: .seconds(3))
        #expect(try await status(["-u", "bob:\(old)"], "/v2/team-b/app/tags/list") == 401, "the old password still works after the cache lifetime")
        #expect(try await status(["-u", "bob:bob-new-pw"], "/v2/team-b/app/tags/list") != 401)
    }

    @Test("injection attempts in the login name, a disabled account and a wrong password are refused with 401")
    func refusals() async throws {
        for user in ["*", "alice)(uid=*", "*)(objectClass=*", "alice,ou=people"] {
            #expect(try await status(["-u", "\(user):\(LDAPServer.passwords["alice"]!)"], "/v2/") == 401, "\(user)")
        }
        #expect(try await status(["-u", ldapCredentials("carol")], "/v2/") == 401)
        #expect(try await status(["-u", "alice:wrong"], "/v2/") == 401)
        let log = deployment.gateway.log
        #expect(log.contains("authentication failed") && log.contains("directory refused the password"), "the reason is logged")
    }

    @Test("with slapd stopped, LDAP logins get a 503 with an OCI error while htpasswd users keep working")
    func directoryDownIsA503() async throws {
        ldap.stop()
        let answer = try await deployment.curl(["-i", "-u", ldapCredentials("alice")], path: "/v2/team-a/app/tags/list")
        #expect(answer.standardOutput.hasPrefix("HTTP/1.1 503"), "\(answer)")
        #expect(answer.standardOutput.contains("\"code\":\"UNAVAILABLE\""), "\(answer)")
        let token = try await deployment.curl(["-i", "-u", ldapCredentials("alice")], path: "/token?service=portcullis&scope=repository:team-a/app:pull")
        #expect(token.standardOutput.hasPrefix("HTTP/1.1 503"), "\(token)")
        #expect(try await status(["-u", "hilda:hilda-htpasswd-pw"], "/v2/hilda/app/tags/list") != 401)
        #expect(deployment.gateway.log.contains("directory unavailable"))
        try await ldap.restart()
        #expect(try await status(["-u", ldapCredentials("alice")], "/v2/team-a/app/tags/list") != 503, "logins work again once slapd is back")
    }

    private func status(_ arguments: [String], _ path: String) async throws -> Int {
        let result = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}"] + arguments, path: path)
        return Int(result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }
}

/// The claims of a compact JWT, decoded without verifying it (the tests read what was granted).
func decodeJWTPayload(_ jwt: String) -> [String: Any]? {
    let parts = jwt.split(separator: ".")
    guard parts.count == 3 else { return nil }
    var text = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while text.count % 4 != 0 { text += "=" }
    guard let data = Data(base64Encoded: text) else { return nil }
    return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
}
