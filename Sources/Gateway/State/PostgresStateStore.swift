import Foundation
import Logging
import NIOSSL
import Policy
import PortcullisConfiguration
import PostgresNIO
import Synchronization

/// The state replicas share through one PostgreSQL database (`state.store: postgres`): robots,
/// the push ledger, throttling counters and locks, tag-push serialization, and the
/// notifications that keep each replica's caches in step.
///
/// Every call is bounded by a deadline and throws ``StateStoreError`` when the database does not
/// answer; no request on the data plane waits for it on a cache hit (callers use what is in memory).
final class PostgresStateStore: Sendable {
    let settings: GatewayConfiguration.Postgres
    let client: PostgresClient
    let logger: Logger
    /// Names this process in the push ledger (`host:pid`).
    let replica: String
    /// Seconds any one statement may take, connection included.
    let deadline: Double
    private let password: String?
    private let tlsConfiguration: TLSConfiguration?

    /// Reads `state.password_file` and `state.ca` and makes the client; ``run()`` must run for
    /// any call to be answered.
    init(_ settings: GatewayConfiguration.Postgres, logger: Logger, deadline: Double = 5) throws {
        var password: String?
        if let file = settings.passwordFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw StateStoreError.setup("state.password_file: cannot read \(file)")
            }
            password = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        }
        let tls: PostgresClient.Configuration.TLS
        var tlsConfiguration: TLSConfiguration?
        if let ca = settings.ca {
            var configuration = TLSConfiguration.makeClientConfiguration()
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
            } catch {
                throw StateStoreError.setup("state.ca: \(ca) holds no PEM certificate: \(error)")
            }
            tls = .require(configuration)
            tlsConfiguration = configuration
        } else {
            tls = .disable
        }
        self.password = password
        self.tlsConfiguration = tlsConfiguration
        var configuration = PostgresClient.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: password, database: settings.database, tls: tls)
        configuration.options.maximumConnections = settings.pool
        configuration.options.connectTimeout = .seconds(Int64(deadline))
        configuration.options.additionalStartupParameters = [("application_name", "portcullis")]
        self.settings = settings
        self.logger = logger
        self.deadline = deadline
        self.client = PostgresClient(configuration: configuration)
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        self.replica = "\(String(cString: host)):\(getpid())"
    }

    /// Runs the connection pool until cancelled.
    func run() async {
        await client.run()
    }

    /// Opens one connection outside the pool and closes it: the pool retries a connection that
    /// fails, so only this says why (wrong password, nothing listening, no such database, TLS).
    func probe() async throws {
        let logger = self.logger
        let settings = self.settings
        var tls = PostgresConnection.Configuration.TLS.disable
        if let tlsConfiguration {
            do {
                tls = .require(try NIOSSLContext(configuration: tlsConfiguration))
            } catch {
                throw StateStoreError.setup("state.ca: \(error)")
            }
        }
        let configuration = PostgresConnection.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: password, database: settings.database, tls: tls)
        try await timed {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            try? await connection.close()
        }
    }

    /// `body` within ``deadline`` seconds, its failures as ``StateStoreError``.
    func timed<T: Sendable>(within seconds: Double? = nil, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let deadline = seconds ?? self.deadline
        do {
            return try await withThrowingTaskGroup(of: T.self) { group in
                group.addTask { try await body() }
                group.addTask {
                    try await Task.sleep(for: .seconds(deadline))
                    throw StateStoreError.unavailable("no answer from \(self.settings.displayURL) within \(Int(deadline)) s")
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        } catch {
            throw StateStoreError.wrapping(error)
        }
    }

    // MARK: Schema

    /// The schema version the database holds (0: none yet).
    func schemaVersion() async throws -> Int {
        try await timed { [client] in
            var exists = false
            for try await (name) in try await client.query("SELECT to_regclass('portcullis.schema_version')::text").decode(String?.self) {
                exists = name != nil
            }
            guard exists else { return 0 }
            var version = 0
            for try await (found) in try await client.query("SELECT coalesce(max(version), 0) FROM portcullis.schema_version").decode(Int.self) {
                version = found
            }
            return version
        }
    }

    /// Applies the migrations after the database's version up to `target`, in one transaction
    /// that holds an advisory lock (replicas starting together migrate once).
    /// - Returns: the versions before and after.
    @discardableResult
    func migrate(to target: Int = StateSchema.current) async throws -> (from: Int, to: Int) {
        let logger = self.logger
        return try await timed { [client] in
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(StateSchema.migrationLock))", logger: logger)
                var exists = false
                for try await (name) in try await connection.query("SELECT to_regclass('portcullis.schema_version')::text", logger: logger).decode(String?.self) {
                    exists = name != nil
                }
                var version = 0
                if exists {
                    for try await (found) in try await connection.query("SELECT coalesce(max(version), 0) FROM portcullis.schema_version", logger: logger)
                        .decode(Int.self)
                    {
                        version = found
                    }
                }
                guard version <= StateSchema.current else { throw StateStoreError.schemaTooNew(found: version, known: StateSchema.current) }
                if version >= target { return (version, version) }
                for number in (version + 1)...target {
                    for statement in StateSchema.migrations[number - 1] {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query("INSERT INTO portcullis.schema_version (version) VALUES (\(number))", logger: logger)
                }
                return (version, target)
            }
        }
    }

    /// Throws unless the database holds exactly the schema this Portcullis uses.
    func checkSchema() async throws {
        let version = try await schemaVersion()
        if version < StateSchema.current { throw StateStoreError.schemaTooOld(found: version, needed: StateSchema.current) }
        if version > StateSchema.current { throw StateStoreError.schemaTooNew(found: version, known: StateSchema.current) }
    }

    // MARK: Robots

    /// Every robot, by name.
    func robots() async throws -> [RobotCredential] {
        try await timed { [client] in
            var robots: [RobotCredential] = []
            let rows = try await client.query("SELECT name, secret_hash, expires, labels::text, created FROM portcullis.robots ORDER BY created, name")
            for try await (name, hash, expires, labels, created) in rows.decode((String, String, Double?, String, Double?).self) {
                let decoded = (try? JSONDecoder().decode([String: [String]].self, from: Data(labels.utf8))) ?? [:]
                robots.append(RobotCredential(name: name, secretHash: hash, expires: expires, labels: decoded, created: created))
            }
            return robots
        }
    }

    /// Stores a new robot and tells every replica.
    /// - Throws: ``StateStoreError/robotExists(_:)`` when the name is taken.
    func create(_ robot: RobotCredential) async throws {
        let labels = String(decoding: (try? JSONEncoder().encode(robot.labels)) ?? Data("{}".utf8), as: UTF8.self)
        let inserted = try await timed { [client] in
            var inserted = false
            let rows = try await client.query(
                """
                INSERT INTO portcullis.robots (name, secret_hash, expires, labels, created)
                VALUES (\(robot.name), \(robot.secretHash), \(robot.expires), \(labels)::jsonb, \(robot.created))
                ON CONFLICT (name) DO NOTHING RETURNING name
                """)
            for try await _ in rows { inserted = true }
            return inserted
        }
        guard inserted else { throw StateStoreError.robotExists(robot.name) }
        try await notify(.robots)
    }

    /// Deletes a robot and tells every replica.
    /// - Returns: whether it existed.
    func revoke(_ name: String) async throws -> Bool {
        let deleted = try await timed { [client] in
            var deleted = false
            for try await _ in try await client.query("DELETE FROM portcullis.robots WHERE name = \(name) RETURNING name") { deleted = true }
            return deleted
        }
        if deleted { try await notify(.robots) }
        return deleted
    }

    // MARK: Notifications

    /// Tells every replica (this one included) about `event`.
    func notify(_ event: StateEvent) async throws {
        let payload = event.payload
        try await timed { [client] in
            try await client.query("SELECT pg_notify(\(StateEvent.channel), \(payload))")
            return ()
        }
    }

    /// Listens for ``StateEvent``s until cancelled, reconnecting after a failure. `connected`
    /// runs each time listening starts (what was missed meanwhile must be re-read there);
    /// `failed` when the connection is lost or cannot be made.
    func listen(
        connected: @escaping @Sendable () async -> Void, event: @escaping @Sendable (StateEvent) async -> Void,
        failed: @escaping @Sendable (StateStoreError) -> Void
    ) async {
        var delay = 0.25
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: StateEvent.channel) { notifications in
                        delay = 0.25
                        await connected()
                        for try await notification in notifications {
                            if let decoded = StateEvent(payload: notification.payload) { await event(decoded) }
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                failed(StateStoreError.wrapping(error))
            }
            try? await Task.sleep(for: .seconds(delay))
            delay = min(delay * 2, 2)
        }
    }

    // MARK: Throttling

    /// Counts a failed login of `account` from `address` for every replica, and locks either
    /// once its count within `window` reaches its limit (telling every replica).
    /// - Returns: the locks taken: kind, key and until (seconds since 1970).
    func recordFailure(
        account: String, address: String, settings: AuthenticationThrottle.Settings
    ) async throws -> [(kind: StateEvent.ThrottleKind, key: String, until: Double)] {
        let logger = self.logger
        // A failed login's answer waits for this: a short deadline, the local count stands anyway.
        let locks = try await timed(within: min(deadline, 2)) { [client] in
            try await client.withConnection { connection in
                let window = settings.window
                try await connection.query(
                    "INSERT INTO portcullis.auth_failures (kind, key) VALUES ('account', \(account)), ('address', \(address))", logger: logger)
                try await connection.query("DELETE FROM portcullis.auth_failures WHERE at < now() - make_interval(secs => \(window))", logger: logger)
                var locks: [(kind: StateEvent.ThrottleKind, key: String, until: Double)] = []
                for (kind, key, limit) in [(StateEvent.ThrottleKind.account, account, settings.maxFailures), (.address, address, settings.maxFailuresPerAddress)] {
                    var count = 0
                    for try await (found) in try await connection.query(
                        "SELECT count(*)::int8 FROM portcullis.auth_failures WHERE kind = \(kind.rawValue) AND key = \(key) AND at > now() - make_interval(secs => \(window))", logger: logger
                    ).decode(Int.self) {
                        count = found
                    }
                    guard count >= limit else { continue }
                    let cooldown = settings.cooldown
                    for try await (until) in try await connection.query(
                        """
                        INSERT INTO portcullis.auth_locks (kind, key, until) VALUES (\(kind.rawValue), \(key), now() + make_interval(secs => \(cooldown)))
                        ON CONFLICT (kind, key) DO UPDATE SET until = excluded.until
                        RETURNING extract(epoch FROM until)::float8
                        """, logger: logger
                    ).decode(Double.self) {
                        locks.append((kind, key, until))
                    }
                    try await connection.query("DELETE FROM portcullis.auth_failures WHERE kind = \(kind.rawValue) AND key = \(key)", logger: logger)
                }
                return locks
            }
        }
        for lock in locks { try await notify(.throttled(kind: lock.kind, key: lock.key, until: lock.until)) }
        return locks
    }

    /// The locks in force now.
    func activeLocks() async throws -> [(kind: StateEvent.ThrottleKind, key: String, until: Double)] {
        try await timed { [client] in
            var locks: [(kind: StateEvent.ThrottleKind, key: String, until: Double)] = []
            let rows = try await client.query("SELECT kind, key, extract(epoch FROM until)::float8 FROM portcullis.auth_locks WHERE until > now()")
            for try await (kind, key, until) in rows.decode((String, String, Double).self) {
                if let kind = StateEvent.ThrottleKind(rawValue: kind) { locks.append((kind, key, until)) }
            }
            return locks
        }
    }

    // MARK: Immutable tags

    /// Takes the database's advisory lock of `key` (a repository and tag) on a connection of its
    /// own, held until the lease is released, so that of two replicas pushing one protected tag
    /// one at a time asks the registry and forwards. The lock is a transaction's: a replica that
    /// dies mid-push releases it with its connection.
    /// - Throws: ``StateStoreError`` when the lock is not held within ``deadline`` seconds (the
    ///   caller refuses the push: immutable tags fail closed).
    func acquireTagPushLock(_ key: String) async throws -> TagPushLease {
        let logger = self.logger
        let client = self.client
        let (acquired, acquiredContinuation) = AsyncThrowingStream<Void, any Error>.makeStream()
        let (released, releasedContinuation) = AsyncStream<Void>.makeStream()
        let holder = Task {
            do {
                try await client.withConnection { connection in
                    try await connection.query("BEGIN", logger: logger)
                    do {
                        try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(key), 0))", logger: logger)
                        acquiredContinuation.yield()
                        for await _ in released { break }
                        try await connection.query("COMMIT", logger: logger)
                    } catch {
                        _ = try? await connection.query("ROLLBACK", logger: logger)
                        throw error
                    }
                }
                acquiredContinuation.finish()
            } catch {
                acquiredContinuation.finish(throwing: error)
            }
        }
        let lease = TagPushLease(release: { releasedContinuation.finish() })
        do {
            try await timed {
                for try await _ in acquired { return }
                throw StateStoreError.unavailable("the tag lock ended before it was held")
            }
            return lease
        } catch {
            lease.release()
            holder.cancel()
            throw error
        }
    }

    // MARK: Push ledger

    /// Writes `entries` and tells every replica that the tags of `repositories` moved, in one
    /// statement (one round trip, its own transaction: the notifications go out when it
    /// commits); an entry written before is skipped.
    func write(_ entries: [PushLedgerEntry], notifying repositories: [String] = []) async throws {
        let replica = self.replica
        let ids = entries.map(\.entry.uuidString)
        let names = entries.map(\.record.repository)
        let references = entries.map(\.record.reference)
        let digests = entries.map(\.record.digest)
        let accounts = entries.map(\.account)
        let times = entries.map(\.time)
        let payloads = repositories.map { StateEvent.tags(repository: $0).payload }
        try await timed { [client] in
            try await client.query(
                """
                WITH written AS (
                    INSERT INTO portcullis.push_ledger (entry, repository, reference, digest, account, pushed_at, replica)
                    SELECT entry::uuid, repository, reference, digest, account, to_timestamp(time), \(replica)
                    FROM unnest(\(ids)::text[], \(names)::text[], \(references)::text[], \(digests)::text[], \(accounts)::text[], \(times)::float8[])
                        AS pushed(entry, repository, reference, digest, account, time)
                    ON CONFLICT (entry) DO NOTHING)
                SELECT pg_notify(\(StateEvent.channel), payload) FROM unnest(\(payloads)::text[]) AS notified(payload)
                """)
            return ()
        }
    }

    /// The latest push time of every manifest, by repository and then digest (seconds since 1970).
    func latestPushTimes(repository: String? = nil) async throws -> [String: [String: Double]] {
        try await timed { [client] in
            var result: [String: [String: Double]] = [:]
            let rows = try await client.query(
                """
                SELECT repository, digest, extract(epoch FROM max(pushed_at))::float8 FROM portcullis.push_ledger
                WHERE \(repository)::text IS NULL OR repository = \(repository) GROUP BY repository, digest
                """)
            for try await (repository, digest, time) in rows.decode((String, String, Double).self) {
                result[repository, default: [:]][digest] = time
            }
            return result
        }
    }

    /// Every recorded push of `digest` to `repository`, oldest first: time (seconds since 1970),
    /// reference, account and replica.
    func pushes(of digest: String, in repository: String) async throws -> [(time: Double, reference: String, account: String, replica: String)] {
        try await timed { [client] in
            var pushes: [(time: Double, reference: String, account: String, replica: String)] = []
            let rows = try await client.query(
                """
                SELECT extract(epoch FROM pushed_at)::float8, reference, account, replica FROM portcullis.push_ledger
                WHERE repository = \(repository) AND digest = \(digest) ORDER BY pushed_at, reference
                """)
            for try await (time, reference, account, replica) in rows.decode((Double, String, String, String).self) {
                pushes.append((time, reference, account, replica))
            }
            return pushes
        }
    }

    /// How many ledger entries the database holds (for `state check`).
    func ledgerCount() async throws -> Int {
        try await timed { [client] in
            var count = 0
            for try await (found) in try await client.query("SELECT count(*)::int8 FROM portcullis.push_ledger").decode(Int.self) { count = found }
            return count
        }
    }
}

extension PostgresStateStore {
    /// Runs `body` with a store for `settings` whose pool runs meanwhile (for commands).
    static func using<T: Sendable>(
        _ settings: GatewayConfiguration.Postgres, logger: Logger, _ body: @escaping @Sendable (PostgresStateStore) async throws -> T
    ) async throws -> T {
        let store = try PostgresStateStore(settings, logger: logger)
        try await store.probe()
        let pool = Task { await store.run() }
        defer { pool.cancel() }
        return try await body(store)
    }
}
