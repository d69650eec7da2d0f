import Synchronization

/// Serializes manifest pushes to one protected tag of one repository through this Portcullis:
/// the registry is asked what the tag points to, and the push forwarded, by one request at a
/// time, so of two concurrent first pushes of a tag exactly one wins. Across replicas (the
/// postgres state store) the holder also holds the database's lock of the tag (``attach(_:to:)``).
final class TagPushLocks: Sendable {
    private struct Waiters {
        /// Requests waiting for each held key, in arrival order.
        var queues: [String: [CheckedContinuation<Void, Never>]] = [:]
        /// The database lock each holder took, released with the key.
        var leases: [String: TagPushLease] = [:]
    }

    private let state = Mutex(Waiters())

    init() {}

    /// Waits until `key` is free, then holds it until ``release(_:)``.
    func acquire(_ key: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let free = state.withLock { waiters -> Bool in
                if waiters.queues[key] == nil {
                    waiters.queues[key] = []
                    return true
                }
                waiters.queues[key]!.append(continuation)
                return false
            }
            if free { continuation.resume() }
        }
    }

    /// Releases `lease` with `key` (the caller holds `key`).
    func attach(_ lease: TagPushLease, to key: String) {
        state.withLock { $0.leases[key] = lease }
    }

    /// Hands `key` to the next waiter, or frees it, releasing the database lock attached to it.
    func release(_ key: String) {
        state.withLock { $0.leases.removeValue(forKey: key) }?.release()
        let next = state.withLock { waiters -> CheckedContinuation<Void, Never>? in
            guard var queue = waiters.queues[key] else { return nil }
            if queue.isEmpty {
                waiters.queues[key] = nil
                return nil
            }
            let first = queue.removeFirst()
            waiters.queues[key] = queue
            return first
        }
        next?.resume()
    }

    /// How many keys are held (for tests of the bookkeeping).
    var heldCount: Int { state.withLock { $0.queues.count } }
}
