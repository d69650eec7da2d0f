import Foundation
import Logging
import Synchronization

/// Accepted manifest pushes on their way to the database's push ledger, and the repositories
/// whose tags moved on their way to the other replicas: appended on the event loop without
/// waiting, written in batches by ``run(store:metrics:logger:)`` (one transaction: the entries in
/// one statement, the notifications in another), and kept (entries up to ``capacity``) while the
/// database is down, so that none is lost when it returns.
final class PushLedger: Sendable {
    private struct Queue {
        var entries: [PushLedgerEntry] = []
        /// Repositories whose tags moved, not yet notified (a set: one notification each per batch).
        var moved: Set<String> = []
        var wakeUp: AsyncStream<Void>.Continuation?
    }

    /// The most entries held while the database is unavailable; beyond it a push is logged at
    /// error as a `push_times` line (importable with `portcullis state import`) and counted.
    let capacity: Int
    private let queue = Mutex(Queue())
    private let signal: AsyncStream<Void>

    init(capacity: Int = 100_000) {
        self.capacity = capacity
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.signal = stream
        queue.withLock { $0.wakeUp = continuation }
    }

    /// Queues `entry`. Returns `false` when the queue is full (the caller logs the push).
    func append(_ entry: PushLedgerEntry) -> Bool {
        let wakeUp = queue.withLock { queue -> AsyncStream<Void>.Continuation?? in
            guard queue.entries.count < capacity else { return nil }
            queue.entries.append(entry)
            return .some(queue.wakeUp)
        }
        guard let wakeUp else { return false }
        wakeUp?.yield()
        return true
    }

    /// Queues a notification that `repository`'s tags moved (a push or delete through this replica).
    func tagsMoved(in repository: String) {
        let wakeUp = queue.withLock { queue in
            queue.moved.insert(repository)
            return queue.wakeUp
        }
        wakeUp?.yield()
    }

    /// Entries not yet written.
    var pending: Int { queue.withLock { $0.entries.count } }

    /// Writes queued entries until cancelled: batches of up to 256, each removed only once the
    /// database committed it, retried every second or two while it is down (one error log per
    /// outage, one when it is over). What is still queued at cancellation is logged at error, one
    /// `push_times` line each.
    func run(store: PostgresStateStore, metrics: GatewayMetrics, logger: Logger) async {
        var failing = false
        var delay = 0.5
        for await _ in signal {
            while !Task.isCancelled {
                let (batch, moved) = queue.withLock { (Array($0.entries.prefix(256)), Array($0.moved)) }
                if batch.isEmpty && moved.isEmpty { break }
                do {
                    try await store.write(batch, notifying: moved)
                    queue.withLock { queue in
                        queue.entries.removeFirst(batch.count)
                        queue.moved.subtract(moved)
                    }
                    metrics.pushLedgerQueued(pending)
                    if failing {
                        failing = false
                        metrics.stateStoreAvailability(true)
                        logger.notice("push ledger written again: the state store is back", metadata: ["queued": "\(pending)"])
                    }
                    delay = 0.5
                } catch {
                    if Task.isCancelled { break }
                    metrics.stateStoreFailure(operation: "ledger")
                    metrics.pushLedgerQueued(pending)
                    if !failing {
                        failing = true
                        metrics.stateStoreAvailability(false)
                        logger.error(
                            "push ledger not written: pushes are queued until the state store answers",
                            metadata: ["queued": "\(pending)", "capacity": "\(capacity)", "reason": "\(error)"])
                    }
                    try? await Task.sleep(for: .seconds(delay))
                    delay = min(delay * 2, 2)
                }
            }
            if Task.isCancelled { break }
        }
        // Shutting down: one last write, outside this cancelled task (the pool still runs).
        let last = queue.withLock { $0.entries }
        if !last.isEmpty, (try? await Task.detached { try await store.write(last, notifying: []) }.value) != nil {
            queue.withLock { $0.entries.removeFirst(last.count) }
        }
        let left = queue.withLock { queue in
            defer { queue.entries = [] }
            return queue.entries
        }
        for entry in left {
            metrics.pushLedgerDropped(reason: "shutdown")
            logger.error(
                "push not written to the ledger before shutdown: import this line with `portcullis state import --push-times`",
                metadata: ["push_times_line": "\(entry.record.jsonLine)", "account": "\(entry.account)"])
        }
    }

    /// Ends ``run(store:metrics:logger:)``'s wait for new entries.
    func finish() {
        queue.withLock { $0.wakeUp?.finish() }
    }
}
