import Synchronization

/// Each repository's tag → manifest digest map, for `GET /v2/<name>/tags/list?digest=…`.
///
/// Building the map costs one registry request per tag, so it is kept for ``lifetime``
/// seconds. A manifest push or delete through this Portcullis invalidates the repository at
/// once; changes that bypass it (another replica, a direct push) show after at most
/// ``lifetime`` seconds. A map whose computation started before an invalidation of its
/// repository is never stored, so a slow lookup cannot bring back a stale answer.
final class TagDigestCache: Sendable {
    private struct Entry: Sendable {
        var digests: [String: String]
        var stored: Double
    }

    private struct Storage: Sendable {
        var entries: [String: Entry] = [:]
        /// The epoch of each repository's latest invalidation.
        var invalidated: [String: UInt64] = [:]
        /// Counts invalidations.
        var epoch: UInt64 = 0
        /// Maps computed from before this epoch are dropped (set when `invalidated` is cleared).
        var floor: UInt64 = 0
    }

    /// Seconds a map is served.
    let lifetime: Double
    /// The most repositories kept.
    let capacity: Int
    private let storage = Mutex(Storage())

    init(lifetime: Double = 30, capacity: Int = 1024) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// The cached map of `repository`, if still fresh at `now`.
    func lookup(_ repository: String, now: Double) -> [String: String]? {
        storage.withLock { storage in
            guard let entry = storage.entries[repository], now - entry.stored < lifetime else { return nil }
            return entry.digests
        }
    }

    /// Call before computing a map; pass the result to ``store(_:digests:since:now:)``.
    func begin() -> UInt64 {
        storage.withLock { $0.epoch }
    }

    /// Stores a map computed since `epoch`, unless the repository was invalidated meanwhile.
    func store(_ repository: String, digests: [String: String], since epoch: UInt64, now: Double) {
        storage.withLock { storage in
            guard epoch >= storage.floor, (storage.invalidated[repository] ?? 0) <= epoch else { return }
            if storage.entries[repository] == nil, storage.entries.count >= capacity {
                storage.entries = storage.entries.filter { now - $0.value.stored < lifetime }
                if storage.entries.count >= capacity, let oldest = storage.entries.min(by: { $0.value.stored < $1.value.stored }) {
                    storage.entries[oldest.key] = nil
                }
            }
            storage.entries[repository] = Entry(digests: digests, stored: now)
        }
    }

    /// Forgets `repository` after a manifest was pushed or deleted.
    func invalidate(_ repository: String) {
        storage.withLock { storage in
            storage.epoch += 1
            storage.entries[repository] = nil
            storage.invalidated[repository] = storage.epoch
            if storage.invalidated.count > capacity {
                storage.invalidated.removeAll()
                storage.floor = storage.epoch
            }
        }
    }

    /// Forgets every repository, and maps being computed now (invalidations from other
    /// replicas may have been missed).
    func invalidateAll() {
        storage.withLock { storage in
            storage.epoch += 1
            storage.entries = [:]
            storage.invalidated = [:]
            storage.floor = storage.epoch
        }
    }
}
