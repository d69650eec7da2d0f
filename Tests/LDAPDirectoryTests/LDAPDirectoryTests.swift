import Foundation
import Policy
import Testing
import TestSupport

@testable import LDAPDirectory

/// `LDAPDirectory` against a real slapd with the fixture of ``LDAPServer``.
@Suite(.serialized)
final class LDAPDirectoryTests {
    let server: LDAPServer
    let directory: String

    init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-ldap-\(UUID().uuidString.prefix(8))").path
        server = try await LDAPServer.start(in: directory)
    }

    deinit {
        server.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func settings(
        lookup: LDAPSettings.UserLookup = .template("uid=${username},ou=people,dc=example,dc=org"), startTLS: Bool = false,
        groups: LDAPSettings.GroupLookup? = .search(base: "ou=groups,dc=example,dc=org", filter: "(member=${dn})", attribute: "cn", label: "group"),
        accountAttribute: String? = nil
    ) -> LDAPSettings {
        LDAPSettings(
            url: server.url, startTLS: startTLS, caFile: server.caPath, userLookup: lookup, groupLookup: groups, accountAttribute: accountAttribute,
            timeout: 3)
    }

    @Test func aBindWithTheRightPasswordGivesTheAccountAndEveryGroupAsLabelValues() throws {
        let identity = try LDAPDirectory(settings: settings()).authenticate(account: "alice", password: LDAPServer.passwords["alice"]!)
        #expect(identity.account == "alice")
        #expect(identity.kind == .ldap)
        #expect(identity.labels["group"]?.sorted() == ["platform", "team-a"])
    }

    @Test func aWrongPasswordIsRefusedAsInvalidCredentials() throws {
        let error = #expect(throws: PolicyError.self) {
            try LDAPDirectory(settings: self.settings()).authenticate(account: "alice", password: "wrong")
        }
        #expect(error?.code == .invalidCredentials)
    }

    @Test func anEmptyPasswordIsRefusedAlthoughLDAPWouldTakeItAsAnAnonymousBind() throws {
        let error = #expect(throws: PolicyError.self) {
            try LDAPDirectory(settings: self.settings()).authenticate(account: "alice", password: "")
        }
        #expect(error?.code == .invalidCredentials)
    }

    @Test func aDisabledAccountCannotLogIn() throws {
        let error = #expect(throws: PolicyError.self) {
            try LDAPDirectory(settings: self.settings()).authenticate(account: "carol", password: LDAPServer.passwords["carol"]!)
        }
        #expect(error?.code == .invalidCredentials)
    }

    @Test func startTLSWithTheTestCAWorksAndAnUnknownCAIsUnavailableNotRefused() throws {
        let identity = try LDAPDirectory(settings: settings(startTLS: true)).authenticate(account: "bob", password: LDAPServer.passwords["bob"]!)
        #expect(identity.labels["group"] == ["team-b"])
        var untrusted = settings(startTLS: true)
        untrusted.caFile = "/etc/ssl/certs/nonexistent-ca.pem"
        let error = #expect(throws: PolicyError.self) {
            try LDAPDirectory(settings: untrusted).authenticate(account: "bob", password: LDAPServer.passwords["bob"]!)
        }
        #expect(error?.code == .directoryUnavailable)
    }

    @Test func theSearchModeFindsTheEntryAsTheServiceAccountAndTakesTheAccountNameFromAnAttribute() throws {
        let lookup = LDAPSettings.UserLookup.search(
            base: "ou=people,dc=example,dc=org", filter: "(mail=${username})", bindDN: LDAPServer.readerDN, bindPassword: LDAPServer.readerPassword)
        let identity = try LDAPDirectory(settings: settings(lookup: lookup, accountAttribute: "uid"))
            .authenticate(account: "alice@example.org", password: LDAPServer.passwords["alice"]!)
        #expect(identity.account == "alice")
        #expect(identity.labels["group"]?.count == 2)
    }

    @Test(arguments: ["*", "al*", ")(uid=*", "alice)(|(uid=*", "alice\u{0}", "*)(objectClass=*"])
    func injectedFilterCharactersInALoginNameMatchNothing(login: String) throws {
        let lookup = LDAPSettings.UserLookup.search(
            base: "ou=people,dc=example,dc=org", filter: "(uid=${username})", bindDN: LDAPServer.readerDN, bindPassword: LDAPServer.readerPassword)
        let error = #expect(throws: PolicyError.self) {
            try LDAPDirectory(settings: self.settings(lookup: lookup)).authenticate(account: login, password: LDAPServer.passwords["alice"]!)
        }
        #expect(error?.code == .unknownAccount)
    }

    @Test(arguments: ["alice,ou=people", "*", "alice+cn=x", "\\61lice"])
    func injectedDNCharactersInALoginNameDoNotBindAsSomeoneElse(login: String) throws {
        let error = #expect(throws: PolicyError.self) {
            try LDAPDirectory(settings: self.settings()).authenticate(account: login, password: LDAPServer.passwords["alice"]!)
        }
        #expect(error?.code == .invalidCredentials || error?.code == .unknownAccount)
    }

    @Test func escapingFollowsRFC4515AndRFC4514() {
        #expect(LDAPEscaping.filterValue("a*b(c)d\\e") == "a\\2Ab\\28c\\29d\\5Ce")
        // libldap escapes DN specials as hex pairs (RFC 4514 §2.4 allows either form).
        #expect(LDAPEscaping.dnValue("a,b+c") == "a\\2Cb\\2Bc")
        #expect(LDAPEscaping.dnValue(" #lead") == "\\20#lead" || LDAPEscaping.dnValue(" #lead") == "\\ #lead")
        #expect(LDAPEscaping.firstRDNValue(of: "cn=platform,ou=groups,dc=example,dc=org") == "platform")
    }

    @Test func aStoppedDirectoryIsUnavailableNotARefusal() async throws {
        server.stop()
        let error = #expect(throws: PolicyError.self) {
            try LDAPDirectory(settings: self.settings()).authenticate(account: "alice", password: LDAPServer.passwords["alice"]!)
        }
        #expect(error?.code == .directoryUnavailable)
    }
}
