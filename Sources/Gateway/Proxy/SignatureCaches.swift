import Policy
import Synchronization

/// What Portcullis remembers of signature checks (`content[].signed_by`), so that a manifest
/// pull whose answer is known costs a lookup and no request to the registry: which digests
/// verified (with the keys that were asked: a key changed on reload forgets them), and which
/// digest a tag pointed to a moment ago. Both bounded and expiring; only verified digests are
/// kept, so a signature added a second ago counts at the next pull.
///
/// A tag remembered here may have moved since (through another replica): the pull is then
/// served the digest verified before, never an unverified one, until the entry expires.
final class SignatureCaches: Sendable {
    /// Seconds a verified digest is remembered.
    let verifiedLifetime: Double
    /// Seconds a tag's digest is remembered.
    let tagLifetime: Double
    /// Entries of each map at most.
    let capacity: Int

    private struct Verified {
        var verdict: SignatureVerdict
        var keys: String
        var expires: Double
    }

    private struct Resolved {
        var digest: String
        var expires: Double
    }

    private struct Maps {
        var verified: [String: Verified] = [:]
        var tags: [String: Resolved] = [:]
    }

    private let maps = Mutex(Maps())

    init(verifiedLifetime: Double = 600, tagLifetime: Double = 30, capacity: Int = 16_384) {
        self.verifiedLifetime = verifiedLifetime
        self.tagLifetime = tagLifetime
        self.capacity = capacity
    }

    /// The remembered verdict on `digest` in `repository` under `keys`, if it verified and has not expired.
    func verdict(_ digest: String, in repository: String, keys: String, now: Double) -> SignatureVerdict? {
        maps.withLock { maps in
            guard let entry = maps.verified[repository + "@" + digest], entry.keys == keys, entry.expires > now else { return nil }
            return entry.verdict
        }
    }

    /// Remembers a verified `verdict` on `digest` (nothing else is remembered).
    func remember(_ verdict: SignatureVerdict, for digest: String, in repository: String, keys: String, now: Double) {
        guard verdict.isVerified else { return }
        maps.withLock { maps in
            Self.makeRoom(&maps.verified, capacity: capacity, now: now) { $0.expires }
            maps.verified[repository + "@" + digest] = Verified(verdict: verdict, keys: keys, expires: now + verifiedLifetime)
        }
    }

    /// The digest `tag` pointed to in `repository` a moment ago.
    func digest(ofTag tag: String, in repository: String, now: Double) -> String? {
        maps.withLock { maps in
            guard let entry = maps.tags[repository + ":" + tag], entry.expires > now else { return nil }
            return entry.digest
        }
    }

    /// Remembers that `tag` points to `digest`.
    func remember(tag: String, digest: String, in repository: String, now: Double) {
        maps.withLock { maps in
            Self.makeRoom(&maps.tags, capacity: capacity, now: now) { $0.expires }
            maps.tags[repository + ":" + tag] = Resolved(digest: digest, expires: now + tagLifetime)
        }
    }

    /// Forgets the tags of `repository` (a push or delete through this Portcullis moved one).
    func forgetTags(of repository: String) {
        maps.withLock { maps in
            maps.tags = maps.tags.filter { !$0.key.hasPrefix(repository + ":") }
        }
    }

    /// Forgets every resolved tag (notifications from other replicas may have been missed).
    func forgetAllTags() {
        maps.withLock { $0.tags = [:] }
    }

    /// Drops expired entries when the map is full, and then, if it still is, entries at random.
    private static func makeRoom<Value>(_ map: inout [String: Value], capacity: Int, now: Double, expires: (Value) -> Double) {
        guard map.count >= capacity else { return }
        map = map.filter { expires($0.value) > now }
        while map.count >= capacity, let key = map.keys.first { map[key] = nil }
    }
}
