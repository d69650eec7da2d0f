import Foundation
import Logging
import Policy
import Synchronization

/// A replica's side of the postgres state store: what the data plane reads stays in memory
/// (robots in the credential store, throttle locks, caches) and is kept in step by the store's
/// notifications; what it writes (failed logins, pushes, cache invalidations) goes to the
/// database without a request waiting for it, except a push to an immutable tag, which holds
/// the database's lock and fails closed.
final class SharedState: Sendable {
    let store: PostgresStateStore
    let ledger: PushLedger
    let metrics: GatewayMetrics
    let logger: Logger
    private let robotList = Mutex<[RobotCredential]?>(nil)

    init(store: PostgresStateStore, metrics: GatewayMetrics, logger: Logger, ledgerCapacity: Int = 100_000) {
        self.store = store
        self.ledger = PushLedger(capacity: ledgerCapacity)
        self.metrics = metrics
        self.logger = logger
    }

    /// The robots last read from the database; `nil` before the first read.
    var robots: [RobotCredential]? { robotList.withLock { $0 } }

    /// Migrates the schema and reads robots and throttle locks, before the replica serves.
    /// - Returns: whether the database answered (if not, the replica serves without robots until
    ///   it does; the listener reads them then).
    func prepare(throttle: AuthenticationThrottle) async -> Bool {
        do {
            let (from, to) = try await store.migrate()
            if from != to { logger.notice("state store schema migrated", metadata: ["from": "\(from)", "to": "\(to)", "url": "\(store.settings.displayURL)"]) }
            try await reload(throttle: throttle)
            metrics.stateStoreAvailability(true)
            return true
        } catch {
            // The pool keeps retrying a connection that fails; a connection of its own says why.
            var reason = "\(error)"
            do { try await store.probe() } catch { reason = "\(error)" }
            metrics.stateStoreAvailability(false)
            metrics.stateStoreFailure(operation: "prepare")
            logger.error(
                "state store unavailable at start: serving without robots until it answers; throttling counts per replica",
                metadata: ["url": "\(store.settings.displayURL)", "reason": "\(reason)"])
            return false
        }
    }

    /// Reads robots and locks again.
    private func reload(throttle: AuthenticationThrottle) async throws {
        if try await store.schemaVersion() < StateSchema.current { _ = try await store.migrate() }
        let robots = try await store.robots()
        robotList.withLock { $0 = robots }
        for lock in try await store.activeLocks() { apply(lock.kind, lock.key, lock.until, to: throttle) }
    }

    private func apply(_ kind: StateEvent.ThrottleKind, _ key: String, _ until: Double, to throttle: AuthenticationThrottle) {
        switch kind {
        case .account: throttle.lock(account: key, until: until)
        case .address: throttle.lock(address: key, until: until)
        }
    }

    /// Runs the listener and the ledger writer until cancelled (the store's pool runs meanwhile). `robotsChanged` runs
    /// after robots were read again; `tagsChanged` for a repository whose tags moved (`nil`: all).
    func run(
        throttle: AuthenticationThrottle, robotsChanged: @escaping @Sendable () -> Void, tagsChanged: @escaping @Sendable (String?) -> Void
    ) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.ledger.run(store: self.store, metrics: self.metrics, logger: self.logger) }
            group.addTask {
                let failing = Mutex(false)
                await self.store.listen(
                    connected: {
                        // Whatever was notified while nobody listened is read again.
                        do {
                            try await self.reload(throttle: throttle)
                            robotsChanged()
                            tagsChanged(nil)
                            self.metrics.stateStoreAvailability(true)
                            if failing.withLock({ $0 }) {
                                failing.withLock { $0 = false }
                                self.logger.notice("state store listening again", metadata: ["url": "\(self.store.settings.displayURL)"])
                            }
                        } catch {
                            self.metrics.stateStoreFailure(operation: "robots")
                            self.logger.error("state store: robots and locks not read", metadata: ["reason": "\(error)"])
                        }
                    },
                    event: { event in
                        switch event {
                        case .robots:
                            do {
                                let robots = try await self.store.robots()
                                self.robotList.withLock { $0 = robots }
                                robotsChanged()
                            } catch {
                                self.metrics.stateStoreFailure(operation: "robots")
                                self.logger.error("state store: robots changed but could not be read", metadata: ["reason": "\(error)"])
                            }
                        case .tags(let repository):
                            tagsChanged(repository)
                        case .throttled(let kind, let key, let until):
                            self.apply(kind, key, until, to: throttle)
                        }
                    },
                    failed: { error in
                        self.metrics.stateStoreFailure(operation: "listen")
                        self.metrics.stateStoreAvailability(false)
                        if !failing.withLock({ $0 }) {
                            failing.withLock { $0 = true }
                            self.logger.error(
                                "state store: not listening; other replicas' robot revocations and pushes reach this one when it answers again",
                                metadata: ["url": "\(self.store.settings.displayURL)", "reason": "\(error)"])
                        }
                    })
            }
            await group.next()
            ledger.finish()
            group.cancelAll()
        }
    }

    /// Counts a failed login for every replica (the local throttle counted it already). When the
    /// database does not answer, the local counters are all there is: logged at error, counted.
    func recordFailure(account: String, address: String, throttle: AuthenticationThrottle) async {
        do {
            let locks = try await store.recordFailure(account: account, address: address, settings: throttle.settings)
            for lock in locks { apply(lock.kind, lock.key, lock.until, to: throttle) }
        } catch {
            metrics.stateStoreFailure(operation: "throttle")
            metrics.stateStoreAvailability(false)
            logger.error(
                "failed login not shared: throttling counts on this replica only until the state store answers",
                metadata: ["account": "\(account)", "peer": "\(address)", "reason": "\(error)"])
        }
    }

    /// Tells every replica that `repository`'s tags moved, without waiting: queued with the
    /// ledger's next batch (a notification lost while the database is down is made up for by
    /// each replica dropping its tag caches when its listener reconnects).
    func tagsMoved(in repository: String) {
        ledger.tagsMoved(in: repository)
    }

    /// Queues a push for the ledger, without waiting.
    func recordPush(_ record: PushRecord, account: String, time: Double) {
        let entry = PushLedgerEntry(entry: UUID(), record: record, account: account, time: time)
        guard ledger.append(entry) else {
            metrics.pushLedgerDropped(reason: "queue_full")
            logger.error(
                "push ledger queue full (the state store has been down a while): import this line with `portcullis state import --push-times`",
                metadata: ["push_times_line": "\(record.jsonLine)", "account": "\(account)", "capacity": "\(ledger.capacity)"])
            return
        }
        metrics.pushLedgerQueued(ledger.pending)
    }
}
