/// Every credential Portcullis accepts, as one immutable value swapped whole on reload.
public struct CredentialStore: Sendable {
    /// htpasswd users.
    public var htpasswd: HtpasswdFile?
    /// Robot credentials by name.
    public var robots: [String: RobotCredential]
    /// A directory (LDAP) asked for login names that are neither robots nor htpasswd users.
    public var directory: (any PasswordDirectory)?
    /// Its recent successful logins.
    public var directoryLogins: DirectoryLoginCache?
    /// Recent logins with an OIDC issuer's token as the password (verified elsewhere: the keys
    /// may have to be fetched), until the token expires or the cache lifetime ends.
    public var workloadLogins: DirectoryLoginCache?

    /// Creates a store.
    public init(
        htpasswd: HtpasswdFile? = nil, robots: [RobotCredential] = [], directory: (any PasswordDirectory)? = nil,
        directoryLogins: DirectoryLoginCache? = nil
    ) {
        self.htpasswd = htpasswd
        self.robots = Dictionary(robots.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.directory = directory
        self.directoryLogins = directory == nil ? nil : directoryLogins ?? DirectoryLoginCache(lifetime: 60, accountRetention: 300)
    }

    /// The identity an account name has right now, without verifying a secret: used to redeem
    /// refresh tokens and to filter the catalog for token holders.
    /// - Throws: ``PolicyError/Code/unknownAccount`` when the account no longer exists, or
    ///   ``PolicyError/Code/credentialExpired`` for an expired robot.
    public func currentIdentity(account: String, now: Double) throws -> Identity {
        if let robot = robots[account] {
            if let expires = robot.expires, now >= expires {
                throw PolicyError(.credentialExpired, "robot \"\(account)\" expired")
            }
            return Identity(account: account, kind: .robot, labels: robot.labels)
        }
        guard let entry = htpasswd?.entries[account] else {
            if let identity = directoryLogins?.lastIdentity(account: account, now: now) ?? workloadLogins?.lastIdentity(account: account, now: now) {
                return identity
            }
            throw PolicyError(.unknownAccount, "no credential for account \"\(account)\"")
        }
        guard Bcrypt.isBcrypt(entry.hash) else {
            throw PolicyError(.unsupportedHashKind, "htpasswd entry for \"\(account)\" is not bcrypt")
        }
        return Identity(account: account, kind: .user)
    }

    /// Whether verifying this credential is cheap right now: a robot (one SHA-256), an htpasswd
    /// user whose verification is still cached, or a directory login still remembered. Callers
    /// run expensive checks (bcrypt, an LDAP bind) elsewhere, never on an event loop.
    public func isCheapToVerify(account: String, secret: String, now: Double, cache: CredentialCache?) -> Bool {
        if robots[account] != nil { return true }
        guard let entry = htpasswd?.entries[account] else {
            if workloadLogins?.identity(account: account, password: secret, now: now) != nil { return true }
            guard directory != nil else { return true }
            return directoryLogins?.identity(account: account, password: secret, now: now) != nil
        }
        guard let cache else { return false }
        return cache.contains(CredentialCache.key(account: account, secret: secret, storedHash: entry.hash), now: now)
    }

    /// Verifies a Basic credential, consulting and filling `cache` so repeated logins are cheap.
    ///
    /// Robots are looked up first, then htpasswd users, then the directory (an LDAP bind:
    /// blocking, so callers ask ``isCheapToVerify(account:secret:now:cache:)`` first).
    /// - Parameter now: the current time in seconds since 1970.
    /// - Throws: ``PolicyError`` with ``PolicyError/Code/unknownAccount``,
    ///   ``PolicyError/Code/invalidCredentials``, ``PolicyError/Code/credentialExpired``,
    ///   ``PolicyError/Code/unsupportedHashKind`` or ``PolicyError/Code/directoryUnavailable``.
    public func authenticate(account: String, secret: String, now: Double, cache: CredentialCache?) throws -> Identity {
        if let robot = robots[account] {
            try robot.verify(secret: secret, now: now)
            return Identity(account: account, kind: .robot, labels: robot.labels)
        }
        guard let htpasswd, let entry = htpasswd.entries[account] else {
            if let identity = workloadLogins?.identity(account: account, password: secret, now: now) { return identity }
            guard let directory else {
                throw PolicyError(.unknownAccount, "no credential for account \"\(account)\"")
            }
            if let identity = directoryLogins?.identity(account: account, password: secret, now: now) { return identity }
            let identity = try directory.authenticate(account: account, password: secret)
            directoryLogins?.insert(account: account, password: secret, identity: identity, now: now)
            return identity
        }
        let key = CredentialCache.key(account: account, secret: secret, storedHash: entry.hash)
        if let cache, cache.contains(key, now: now) {
            return Identity(account: account, kind: .user)
        }
        _ = try htpasswd.verify(account: account, password: secret)
        cache?.insert(key, now: now)
        return Identity(account: account, kind: .user)
    }
}
