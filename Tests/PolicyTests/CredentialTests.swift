import Foundation
import Policy
import Testing
import TestSupport

/// htpasswd lines made once by the real `htpasswd` tool and shared by the suites below.
enum HtpasswdLines {
    struct Lines: Sendable {
        let alice: String
        let aliceNewPassword: String
        let bob: String
        let sha1: String
        let apacheMD5: String
        let crypt: String
    }

    private static let made = Result {
        Lines(
            alice: try PolicyFixtures.htpasswdLine(user: "alice", password: "correct horse"),
            aliceNewPassword: try PolicyFixtures.htpasswdLine(user: "alice", password: "battery staple"),
            bob: try PolicyFixtures.htpasswdLine(user: "bob", password: "s3cret:with:colons"),
            sha1: try PolicyFixtures.htpasswdLine(user: "sha", password: "pw", hash: .sha1),
            apacheMD5: try PolicyFixtures.htpasswdLine(user: "md5", password: "pw", hash: .apacheMD5),
            crypt: try PolicyFixtures.htpasswdLine(user: "des", password: "pw", hash: .crypt)
        )
    }

    /// The lines; throws (failing the test) when `htpasswd` is missing.
    static func get() throws -> Lines { try made.get() }

    static func hash(of line: String) -> String {
        String(line[line.index(after: line.firstIndex(of: ":")!)...])
    }
}

@Suite("htpasswd files")
struct HtpasswdTests {
    @Test("htpasswd is installed: the bcrypt tests need the real tool and must not skip")
    func htpasswdIsInstalled() {
        #expect(which("htpasswd") != nil, "htpasswd is not on PATH; install apache2-utils")
    }

    @Test("a bcrypt line from `htpasswd -nbB` verifies with its password")
    func bcryptLineVerifies() throws {
        let lines = try HtpasswdLines.get()
        #expect(lines.alice.hasPrefix("alice:$2y$"), "htpasswd -B should write $2y$ hashes: \(lines.alice)")
        let file = try HtpasswdFile(contents: lines.alice + "\n" + lines.bob + "\n")
        #expect(try file.verify(account: "alice", password: "correct horse").account == "alice")
        #expect(try file.verify(account: "bob", password: "s3cret:with:colons").hash == HtpasswdLines.hash(of: lines.bob))
    }

    @Test("a wrong password is refused with invalidCredentials", arguments: [
        "correct horsE", "correct horse ", "", "correct", "correct horse correct horse",
    ])
    func wrongPasswordRefused(_ password: String) throws {
        let file = try HtpasswdFile(contents: try HtpasswdLines.get().alice)
        expectPolicyError(.invalidCredentials, messageContains: ["alice"]) {
            try file.verify(account: "alice", password: password)
        }
    }

    @Test("an unknown account is refused with unknownAccount, account names are case-sensitive", arguments: [
        "carol", "Alice", "alice ", "",
    ])
    func unknownAccountRefused(_ account: String) throws {
        let file = try HtpasswdFile(contents: try HtpasswdLines.get().alice)
        expectPolicyError(.unknownAccount) { try file.verify(account: account, password: "correct horse") }
    }

    @Test("a password with an embedded NUL is compared in full, as the registry's Go bcrypt does")
    func embeddedNULIsNotTruncation() throws {
        let file = try HtpasswdFile(contents: try HtpasswdLines.get().alice)
        #expect(throws: PolicyError.self) { try file.verify(account: "alice", password: "correct horse\0anything") }
    }

    @Test("$2b$ and $2a$ spellings of the same bcrypt hash verify too")
    func otherBcryptPrefixesVerify() throws {
        let hash = HtpasswdLines.hash(of: try HtpasswdLines.get().alice)
        for prefix in ["$2b$", "$2a$"] {
            let line = "alice:" + prefix + hash.dropFirst(4)
            let file = try HtpasswdFile(contents: line)
            #expect(throws: Never.self) { try file.verify(account: "alice", password: "correct horse") }
            expectPolicyError(.invalidCredentials) { try file.verify(account: "alice", password: "wrong") }
        }
    }

    @Test("non-bcrypt hashes from htpasswd are kept but refused with unsupportedHashKind")
    func nonBcryptLinesRefused() throws {
        let lines = try HtpasswdLines.get()
        #expect(lines.sha1.hasPrefix("sha:{SHA}"))
        #expect(lines.apacheMD5.hasPrefix("md5:$apr1$"))
        let file = try HtpasswdFile(contents: [lines.sha1, lines.apacheMD5, lines.crypt, "plain:pw"].joined(separator: "\n"))
        // The right password does not help: the hash kind is refused before any comparison.
        expectPolicyError(.unsupportedHashKind, messageContains: ["\"sha\"", "{SHA}"]) {
            try file.verify(account: "sha", password: "pw")
        }
        expectPolicyError(.unsupportedHashKind, messageContains: ["\"md5\"", "$apr1$"]) {
            try file.verify(account: "md5", password: "pw")
        }
        expectPolicyError(.unsupportedHashKind, messageContains: ["DES crypt"]) { try file.verify(account: "des", password: "pw") }
        expectPolicyError(.unsupportedHashKind, messageContains: ["plain text"]) { try file.verify(account: "plain", password: "pw") }
        expectPolicyError(.unsupportedHashKind) { try Bcrypt.verify(password: "pw", hash: HtpasswdLines.hash(of: lines.sha1)) }
    }

    @Test("a line without `:` or with an empty account is malformed, naming its line number", arguments: [
        ("# users\n\nno-colon-here\n", 3),
        ("alice:$2y$05$x\n:orphan-hash\n", 2),
        ("just text", 1),
    ] as [(String, Int)])
    func malformedLineRefused(_ contents: String, _ lineNumber: Int) {
        expectPolicyError(.malformedCredentialEntry, messageContains: ["line \(lineNumber)"]) {
            try HtpasswdFile(contents: contents)
        }
    }

    @Test("comments and blank lines are skipped; the first line for an account wins")
    func toleratesCommentsAndKeepsFirstEntry() throws {
        let lines = try HtpasswdLines.get()
        let contents = "# team\n\n   \n\t# indented comment\n" + lines.alice + "\n" + lines.aliceNewPassword + "\n" + lines.bob + "\n"
        let file = try HtpasswdFile(contents: contents)
        #expect(Set(file.entries.keys) == ["alice", "bob"])
        #expect(try file.verify(account: "alice", password: "correct horse").hash == HtpasswdLines.hash(of: lines.alice))
        expectPolicyError(.invalidCredentials) { try file.verify(account: "alice", password: "battery staple") }
        #expect(throws: Never.self) { try file.verify(account: "bob", password: "s3cret:with:colons") }
    }

    @Test("a file with CRLF line endings (as saved on Windows) reads like the same file with LF")
    func toleratesCRLF() throws {
        let lines = try HtpasswdLines.get()
        let lf = try HtpasswdFile(contents: "# team\n" + lines.alice + "\n" + lines.bob + "\n")
        #expect(lf.entries.count == 2)
        // Swift treats "\r\n" as one Character, so splitting the String on "\n" finds no line break.
        let crlf = try HtpasswdFile(contents: "# team\r\n" + lines.alice + "\r\n" + lines.bob + "\r\n")
        #expect(crlf == lf)
        #expect(crlf.entries.count == 2)
        #expect(throws: Never.self) { try crlf.verify(account: "alice", password: "correct horse") }
        #expect(throws: Never.self) { try crlf.verify(account: "bob", password: "s3cret:with:colons") }
    }

    @Test("a damaged bcrypt hash verifies nothing")
    func damagedBcryptHash() throws {
        let hash = HtpasswdLines.hash(of: try HtpasswdLines.get().alice)
        #expect(try Bcrypt.verify(password: "correct horse", hash: hash))
        #expect(try !Bcrypt.verify(password: "correct horse", hash: String(hash.dropLast(5))))
        #expect(try !Bcrypt.verify(password: "correct horse", hash: "$2y$05$tooshort"))
        #expect(try !Bcrypt.verify(password: "", hash: "$2y$"))
    }
}

@Suite("Credential store and cache")
struct CredentialStoreTests {
    let now = PolicyFixtures.now.timeIntervalSince1970

    func store(_ lines: [String], robots: [RobotCredential] = []) throws -> CredentialStore {
        CredentialStore(htpasswd: try HtpasswdFile(contents: lines.joined(separator: "\n")), robots: robots)
    }

    @Test("an htpasswd user authenticates as a user identity and is remembered in the cache")
    func userAuthenticatesAndIsCached() throws {
        let lines = try HtpasswdLines.get()
        let store = try store([lines.alice, lines.bob])
        let cache = CredentialCache()
        let key = CredentialCache.key(account: "alice", secret: "correct horse", storedHash: HtpasswdLines.hash(of: lines.alice))
        #expect(!cache.contains(key, now: now))
        let identity = try store.authenticate(account: "alice", secret: "correct horse", now: now, cache: cache)
        #expect(identity == .user("alice"))
        #expect(cache.contains(key, now: now + 1))
        // A failed attempt is never remembered.
        expectPolicyError(.invalidCredentials) { try store.authenticate(account: "bob", secret: "nope", now: now, cache: cache) }
        #expect(!cache.contains(CredentialCache.key(account: "bob", secret: "nope", storedHash: HtpasswdLines.hash(of: lines.bob)), now: now))
    }

    @Test("the second authenticate with the same secret is answered by the cache, not by bcrypt")
    func secondAuthenticateHitsCache() throws {
        let lines = try HtpasswdLines.get()
        let store = try store([lines.alice])
        let cache = CredentialCache(lifetime: 60)
        // Plant a verification bcrypt would never make: only a cache hit can accept this secret.
        let forged = CredentialCache.key(account: "alice", secret: "not the password", storedHash: HtpasswdLines.hash(of: lines.alice))
        cache.insert(forged, now: now)
        #expect(try store.authenticate(account: "alice", secret: "not the password", now: now + 30, cache: cache) == .user("alice"))
        // Without the cache (or once the entry has expired), bcrypt decides again.
        expectPolicyError(.invalidCredentials) {
            try store.authenticate(account: "alice", secret: "not the password", now: now + 30, cache: nil)
        }
        expectPolicyError(.invalidCredentials) {
            try store.authenticate(account: "alice", secret: "not the password", now: now + 60, cache: cache)
        }
    }

    @Test("changing a user's hash invalidates the cached verification at once; the new password works")
    func changedHashInvalidatesCache() throws {
        let lines = try HtpasswdLines.get()
        let cache = CredentialCache()
        let before = try store([lines.alice])
        _ = try before.authenticate(account: "alice", secret: "correct horse", now: now, cache: cache)
        #expect(try before.authenticate(account: "alice", secret: "correct horse", now: now + 1, cache: cache) == .user("alice"))

        let after = try store([lines.aliceNewPassword])
        expectPolicyError(.invalidCredentials) {
            try after.authenticate(account: "alice", secret: "correct horse", now: now + 2, cache: cache)
        }
        #expect(try after.authenticate(account: "alice", secret: "battery staple", now: now + 3, cache: cache) == .user("alice"))
    }

    @Test("removing a user makes a cached login unknownAccount at once")
    func removedUserIsUnknown() throws {
        let lines = try HtpasswdLines.get()
        let cache = CredentialCache()
        _ = try store([lines.alice, lines.bob]).authenticate(account: "alice", secret: "correct horse", now: now, cache: cache)
        expectPolicyError(.unknownAccount) {
            try store([lines.bob]).authenticate(account: "alice", secret: "correct horse", now: now + 1, cache: cache)
        }
        expectPolicyError(.unknownAccount) {
            try CredentialStore().authenticate(account: "alice", secret: "correct horse", now: now + 1, cache: cache)
        }
    }

    @Test("a non-bcrypt user is refused through the store with unsupportedHashKind")
    func storeRefusesUnsupportedHash() throws {
        let store = try store([try HtpasswdLines.get().sha1])
        expectPolicyError(.unsupportedHashKind) { try store.authenticate(account: "sha", secret: "pw", now: now, cache: CredentialCache()) }
    }

    @Test("the cache drops the oldest entry when full and forgets everything on removeAll")
    func cacheCapacityAndRemoveAll() {
        let cache = CredentialCache(lifetime: 100, capacity: 2)
        let keys = (0..<3).map { CredentialCache.key(account: "u\($0)", secret: "s", storedHash: "h") }
        for (offset, key) in keys.enumerated() { cache.insert(key, now: now + Double(offset)) }
        #expect(!cache.contains(keys[0], now: now + 3))
        #expect(cache.contains(keys[1], now: now + 3))
        #expect(cache.contains(keys[2], now: now + 3))
        cache.removeAll()
        #expect(!cache.contains(keys[2], now: now + 3))
    }

    @Test("cache keys separate account, secret and stored hash")
    func cacheKeysAreUnambiguous() {
        let base = CredentialCache.key(account: "ab", secret: "c", storedHash: "h")
        #expect(base == CredentialCache.key(account: "ab", secret: "c", storedHash: "h"))
        #expect(base != CredentialCache.key(account: "a", secret: "bc", storedHash: "h"))
        #expect(base != CredentialCache.key(account: "ab", secret: "c", storedHash: "h2"))
        #expect(base != CredentialCache.key(account: "ab", secret: "ch", storedHash: ""))
    }
}

@Suite("Robot credentials")
struct RobotCredentialTests {
    let now = PolicyFixtures.now.timeIntervalSince1970
    let secret = "pc_robot_" + String(repeating: "Zx9", count: 14)

    func robot(expires: Double?) -> RobotCredential {
        RobotCredential(name: "ci", secretHash: RobotCredential.hash(secret: secret), expires: expires, labels: ["team": ["web", "ops"]])
    }

    @Test("the stored hash is sha256: and the lowercase hex SHA-256 of the secret")
    func hashFormat() {
        #expect(RobotCredential.hash(secret: "abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(RobotCredential.hash(secret: "") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("the right secret verifies before expiry and without expiry")
    func verifies() throws {
        try robot(expires: now + 1).verify(secret: secret, now: now)
        try robot(expires: nil).verify(secret: secret, now: now + 1e9)
    }

    @Test("a wrong secret is invalidCredentials, even for an expired robot", arguments: [
        "", "pc_robot_", String(repeating: "x", count: 51),
    ])
    func wrongSecret(_ wrong: String) {
        expectPolicyError(.invalidCredentials, messageContains: ["\"ci\""]) { try robot(expires: now + 100).verify(secret: wrong, now: now) }
        expectPolicyError(.invalidCredentials) { try robot(expires: now - 100).verify(secret: wrong, now: now) }
    }

    @Test("the right secret is credentialExpired at and after the expiry time", arguments: [0.0, 0.5, 86_400])
    func expired(_ late: Double) {
        expectPolicyError(.credentialExpired, messageContains: ["\"ci\""]) {
            try robot(expires: now).verify(secret: secret, now: now + late)
        }
    }

    @Test("the store authenticates a robot as a robot identity carrying its labels, robots before users")
    func storeAuthenticatesRobot() throws {
        let lines = try HtpasswdLines.get()
        let shadowing = RobotCredential(name: "alice", secretHash: RobotCredential.hash(secret: "robot-secret"), expires: nil)
        let store = CredentialStore(htpasswd: try HtpasswdFile(contents: lines.alice), robots: [robot(expires: now + 60), shadowing])
        let identity = try store.authenticate(account: "ci", secret: secret, now: now, cache: CredentialCache())
        #expect(identity == Identity(account: "ci", kind: .robot, labels: ["team": ["web", "ops"]]))
        expectPolicyError(.credentialExpired) { try store.authenticate(account: "ci", secret: secret, now: now + 60, cache: nil) }
        expectPolicyError(.invalidCredentials) { try store.authenticate(account: "ci", secret: "guess", now: now, cache: nil) }
        // A robot named like an htpasswd user takes precedence over it.
        #expect(try store.authenticate(account: "alice", secret: "robot-secret", now: now, cache: nil).kind == .robot)
        expectPolicyError(.invalidCredentials) { try store.authenticate(account: "alice", secret: "correct horse", now: now, cache: nil) }
    }

    @Test("RobotCredential round-trips through Codable")
    func codableRoundTrip() throws {
        let original = robot(expires: now + 5)
        let decoded = try JSONDecoder().decode(RobotCredential.self, from: JSONEncoder().encode(original))
        #expect(decoded == original)
    }
}
