import Crypto
import Synchronization

/// Remembers recently verified credentials so a bcrypt check is not paid on every request.
///
/// An entry is keyed by a SHA-256 over the account, the presented secret and the *stored* hash
/// it was checked against. Changing or removing the stored entry therefore invalidates the
/// cached verification at once: the next lookup computes a different key or finds no entry to
/// compare with. Entries expire after ``lifetime`` seconds and the cache holds at most
/// ``capacity`` of them.
public final class CredentialCache: Sendable {
    /// How long a verification is remembered, in seconds.
    public let lifetime: Double
    /// The most entries kept; the oldest are dropped first.
    public let capacity: Int

    private let entries = Mutex<[SHA256Digest: Double]>([:])

    /// Creates an empty cache.
    public init(lifetime: Double = 60, capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// The cache key of a verification.
    public static func key(account: String, secret: String, storedHash: String) -> SHA256Digest {
        var hasher = SHA256()
        for part in [account, secret, storedHash] {
            hasher.update(data: Array(part.utf8))
            hasher.update(data: [0])
        }
        return hasher.finalize()
    }

    /// Whether the verification keyed by `key` was remembered and is still fresh at `now`.
    public func contains(_ key: SHA256Digest, now: Double) -> Bool {
        entries.withLock { entries in
            guard let expiry = entries[key] else { return false }
            if expiry <= now {
                entries[key] = nil
                return false
            }
            return true
        }
    }

    /// Remembers a successful verification made at `now`.
    public func insert(_ key: SHA256Digest, now: Double) {
        entries.withLock { entries in
            if entries.count >= capacity {
                entries = entries.filter { $0.value > now }
                if entries.count >= capacity, let oldest = entries.min(by: { $0.value < $1.value }) {
                    entries[oldest.key] = nil
                }
            }
            entries[key] = now + lifetime
        }
    }

    /// Forgets everything.
    public func removeAll() {
        entries.withLock { $0.removeAll() }
    }
}
