import Policy
import Synchronization

/// Upstream tokens by subject and access, reused until shortly before they expire.
///
/// Minting is cheap but not free (an ECDSA or RSA signature); most requests of a client repeat
/// the same access, so the cache turns nearly all of them into a dictionary lookup.
final class UpstreamTokenCache: Sendable {
    private struct Entry: Sendable {
        var token: String
        var renewAfter: Double
    }

    /// Tokens are renewed this many seconds before their expiry.
    let renewalMargin: Double
    /// The most entries kept.
    let capacity: Int
    private let entries = Mutex<[String: Entry]>([:])

    init(renewalMargin: Double = 30, capacity: Int = 10_000) {
        self.renewalMargin = renewalMargin
        self.capacity = capacity
    }

    /// The cached token for `subject` and `scopes`, or a new one from `mint`.
    /// - Parameters:
    ///   - lifetime: the lifetime `mint` gives its tokens, in seconds.
    ///   - now: the current time in seconds since 1970.
    /// - Returns: the token and whether it came from the cache.
    func token(subject: String, scopes: [Scope], lifetime: Int, now: Double, mint: () throws -> String) rethrows -> (String, Bool) {
        let key = subject + "\n" + scopes.map(\.description).sorted().joined(separator: " ")
        if let entry = entries.withLock({ $0[key] }), entry.renewAfter > now {
            return (entry.token, true)
        }
        let token = try mint()
        let entry = Entry(token: token, renewAfter: now + Double(lifetime) - renewalMargin)
        entries.withLock { entries in
            if entries.count >= capacity { entries = entries.filter { $0.value.renewAfter > now } }
            if entries.count >= capacity { entries.removeAll() }
            entries[key] = entry
        }
        return (token, false)
    }
}
