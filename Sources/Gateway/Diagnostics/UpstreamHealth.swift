import Synchronization

/// Which non-primary upstreams are out of rotation, shared by readiness checks and requests and
/// kept across configuration reloads. An upstream leaves the rotation when its readiness check
/// fails, when it cannot be reached, or after its `fallback_after` consecutive failed answers
/// (5xx, or a 401 to Portcullis's own token); its repositories then go to the primary until a
/// readiness check passes again.
final class UpstreamHealth: Sendable {
    private struct Counters {
        var unavailable: Set<String> = []
        var consecutiveFailures: [String: Int] = [:]
    }

    private let counters = Mutex(Counters())

    init() {}

    /// Whether `name` takes traffic now.
    func isAvailable(_ name: String) -> Bool {
        counters.withLock { !$0.unavailable.contains(name) }
    }

    /// The names out of rotation now.
    var unavailable: Set<String> {
        counters.withLock { $0.unavailable }
    }

    /// Records a readiness verdict; returns whether availability changed.
    @discardableResult
    func record(ready: Bool, for name: String) -> Bool {
        counters.withLock { counters in
            if ready {
                counters.consecutiveFailures[name] = 0
                return counters.unavailable.remove(name) != nil
            }
            return counters.unavailable.insert(name).inserted
        }
    }

    /// Records one answer of `name` to a forwarded request; returns `true` when this answer, the
    /// `threshold`th failure in a row, took it out of rotation.
    func recordAnswer(failed: Bool, for name: String, threshold: Int) -> Bool {
        counters.withLock { counters in
            guard failed else {
                counters.consecutiveFailures[name] = 0
                return false
            }
            let count = (counters.consecutiveFailures[name] ?? 0) + 1
            counters.consecutiveFailures[name] = count
            return count >= threshold && counters.unavailable.insert(name).inserted
        }
    }
}
