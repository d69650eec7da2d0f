/// The tables Portcullis keeps in its PostgreSQL database (schema `portcullis`), as numbered
/// migrations applied in order; `portcullis.schema_version` records each one applied.
///
/// A migration is never edited once released: a change is a new migration.
enum StateSchema {
    /// The schema version this Portcullis reads and writes.
    static var current: Int { migrations.count }

    /// Migration `n` (1-based) is `migrations[n - 1]`: statements run in one transaction.
    static let migrations: [[String]] = [
        // 1: robots and the push ledger.
        [
            "CREATE SCHEMA IF NOT EXISTS portcullis",
            "CREATE TABLE portcullis.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
            """
            CREATE TABLE portcullis.robots (
                name text PRIMARY KEY,
                secret_hash text NOT NULL,
                expires double precision,
                labels jsonb NOT NULL DEFAULT '{}',
                created double precision)
            """,
            """
            CREATE TABLE portcullis.push_ledger (
                entry uuid PRIMARY KEY,
                repository text NOT NULL,
                reference text NOT NULL,
                digest text NOT NULL,
                account text NOT NULL,
                pushed_at timestamptz NOT NULL,
                replica text NOT NULL)
            """,
            "CREATE INDEX push_ledger_by_repository ON portcullis.push_ledger (repository, digest, pushed_at)",
        ],
        // 2: throttling shared by the replicas.
        [
            "CREATE TABLE portcullis.auth_failures (kind text NOT NULL, key text NOT NULL, at timestamptz NOT NULL DEFAULT now())",
            "CREATE INDEX auth_failures_by_key ON portcullis.auth_failures (kind, key, at)",
            "CREATE INDEX auth_failures_by_time ON portcullis.auth_failures (at)",
            "CREATE TABLE portcullis.auth_locks (kind text NOT NULL, key text NOT NULL, until timestamptz NOT NULL, PRIMARY KEY (kind, key))",
        ],
    ]

    /// The advisory lock key migrations hold, so that replicas starting together migrate once.
    static let migrationLock: Int64 = 0x706f_7274_6375_6c6c  // "portcull"
}
