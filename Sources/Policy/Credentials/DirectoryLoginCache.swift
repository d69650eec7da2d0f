import Crypto
import Synchronization

/// Remembers successful directory logins briefly, so a client that sends its Basic credential
/// on every request (or asks for a token per scope) costs one LDAP round-trip per ``lifetime``.
///
/// Only successes are remembered: a refusal is asked again each time (throttling bounds how
/// often). An entry is keyed by a SHA-256 over the login name and the password, so a changed
/// password in the directory takes effect once the old entry expires.
///
/// Besides, the last identity each account logged in with is kept for ``accountRetention``
/// seconds, for what needs an account's labels without its password (redeeming a refresh
/// token, filtering the catalog for a token holder).
public final class DirectoryLoginCache: Sendable {
    private struct Login {
        var identity: Identity
        var expiry: Double
    }

    /// How long a successful login is remembered, in seconds.
    public let lifetime: Double
    /// How long an account's last identity is kept, in seconds.
    public let accountRetention: Double
    /// The most entries kept in each map; the oldest are dropped first.
    public let capacity: Int

    private let logins = Mutex<[SHA256Digest: Login]>([:])
    private let accounts = Mutex<[String: Login]>([:])

    /// Creates an empty cache.
    public init(lifetime: Double, accountRetention: Double, capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.accountRetention = max(accountRetention, lifetime)
        self.capacity = capacity
    }

    private static func key(account: String, password: String) -> SHA256Digest {
        var hasher = SHA256()
        hasher.update(data: Array(account.utf8))
        hasher.update(data: [0])
        hasher.update(data: Array(password.utf8))
        return hasher.finalize()
    }

    /// The identity of a login remembered and still fresh at `now`.
    public func identity(account: String, password: String, now: Double) -> Identity? {
        let key = Self.key(account: account, password: password)
        return logins.withLock { logins in
            guard let login = logins[key] else { return nil }
            guard login.expiry > now else {
                logins[key] = nil
                return nil
            }
            return login.identity
        }
    }

    /// The identity `account` (the name rules see) last logged in with, if within ``accountRetention``.
    public func lastIdentity(account: String, now: Double) -> Identity? {
        accounts.withLock { accounts in
            guard let login = accounts[account], login.expiry > now else { return nil }
            return login.identity
        }
    }

    /// Remembers a successful login made at `now` with the login name `account`, for
    /// ``lifetime`` or until `notAfter` if that comes first (a signed token's `exp`).
    public func insert(account: String, password: String, identity: Identity, now: Double, notAfter: Double? = nil) {
        let key = Self.key(account: account, password: password)
        let expiry = min(now + lifetime, notAfter ?? .infinity)
        logins.withLock { logins in
            Self.makeRoom(in: &logins, capacity: capacity, now: now)
            logins[key] = Login(identity: identity, expiry: expiry)
        }
        accounts.withLock { accounts in
            Self.makeRoom(in: &accounts, capacity: capacity, now: now)
            accounts[identity.account] = Login(identity: identity, expiry: max(expiry, now + accountRetention))
        }
    }

    private static func makeRoom<Key>(in entries: inout [Key: Login], capacity: Int, now: Double) {
        guard entries.count >= capacity else { return }
        entries = entries.filter { $0.value.expiry > now }
        if entries.count >= capacity, let oldest = entries.min(by: { $0.value.expiry < $1.value.expiry }) {
            entries[oldest.key] = nil
        }
    }
}
