import Foundation
import Testing
import TestSupport

/// `portcullis state migrate|check|import` and the `state:` section, against a real PostgreSQL.
@Suite("shared state: schema migrations and the state commands")
struct StateStoreCommandTests {
    static let database = Task { () throws -> PostgresServer in
        try await PostgresServer.start(in: FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-pg-cli-\(UUID().uuidString.prefix(8))").path)
    }

    /// A configuration whose store is database `name` (created here, owned by the `portcullis`
    /// role), with `state` lines replaced by `stateOverride` when given.
    func configuration(database name: String, stateOverride: String? = nil, extra: String = "") async throws -> (path: String, directory: String) {
        let server = try await Self.database.value
        _ = try await server.psql("CREATE DATABASE \(name) OWNER \(PostgresServer.user)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("state-cli-\(UUID().uuidString.prefix(8))").path
        _ = try await Command(try portcullisBinary(), ["keys", "generate", "--out", directory + "/keys"]).runInBackground().checked()
        try Data("".utf8).write(to: URL(fileURLWithPath: directory + "/users.htpasswd"))
        try Data((PostgresServer.password + "\n").utf8).write(to: URL(fileURLWithPath: directory + "/db-password"))
        let state = stateOverride ?? """
            state:
              store: postgres
              url: postgres://\(PostgresServer.user)@127.0.0.1:\(server.port)/\(name)
              password_file: db-password
            """
        let path = directory + "/portcullis.yaml"
        try Data("""
            listen: 127.0.0.1:5000
            public_url: http://127.0.0.1:5000
            upstream:
              url: http://127.0.0.1:5001
              registry_version: "2.8"
              key_hint: x5c
              service: registry
              issuer: portcullis
            token:
              service: portcullis
              issuer: portcullis
              key: keys/token.key
              certificate: keys/token.crt
            users:
              htpasswd: users.htpasswd
            rules:
              - {account: "*", name: "${account}/**", actions: [pull, push]}
            \(state)
            \(extra)
            """.utf8).write(to: URL(fileURLWithPath: path))
        return (path, directory)
    }

    func portcullis(_ arguments: [String]) async throws -> CommandResult {
        try await Command(try portcullisBinary(), arguments, timeout: .seconds(60)).runInBackground()
    }

    @Test("an empty database: check says to migrate; migrate --to 1 then migrate reaches version 2 keeping version 1's robots; a second migrate has nothing to do")
    func migrationsFromEmptyAndFromThePreviousVersion() async throws {
        let (path, directory) = try await configuration(database: "migrations")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let empty = try await portcullis(["state", "check", "--config", path])
        #expect(empty.status == 1, "\(empty)")
        #expect(empty.standardError.contains("schema version 0, this Portcullis needs 2: run `portcullis state migrate`"), "\(empty)")

        let first = try await portcullis(["state", "migrate", "--config", path, "--to", "1"])
        #expect(first.succeeded && first.standardOutput.contains("schema migrated from version 0 to 1"), "\(first)")
        // Version 1's data: a robot written as version 1 stores it.
        let server = try await Self.database.value
        _ = try await server.psql(
            "INSERT INTO portcullis.robots (name, secret_hash, expires, labels, created) VALUES ('robot-old', 'sha256:00', NULL, '{\"team\":[\"a\"]}', 1)",
            database: "migrations")
        let tooOld = try await portcullis(["state", "check", "--config", path])
        #expect(tooOld.status == 1 && tooOld.standardError.contains("schema version 1, this Portcullis needs 2"), "\(tooOld)")

        let second = try await portcullis(["state", "migrate", "--config", path])
        #expect(second.succeeded && second.standardOutput.contains("schema migrated from version 1 to 2"), "\(second)")
        let again = try await portcullis(["state", "migrate", "--config", path])
        #expect(again.succeeded && again.standardOutput.contains("schema version 2: nothing to do"), "\(again)")
        let check = try await portcullis(["state", "check", "--config", path])
        #expect(check.succeeded && check.standardOutput.contains("schema version 2, 1 robot, 0 push ledger entries"), "\(check)")
        let list = try await portcullis(["robot", "list", "--config", path])
        #expect(list.succeeded && list.standardOutput.contains("robot-old\tnever expires\tteam=a"), "\(list)")
    }

    @Test("a schema from a newer Portcullis is refused, never migrated down")
    func newerSchemaRefused() async throws {
        let (path, directory) = try await configuration(database: "newer")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try await portcullis(["state", "migrate", "--config", path]).checked()
        _ = try await Self.database.value.psql("INSERT INTO portcullis.schema_version (version) VALUES (99)", database: "newer")
        for command in ["check", "migrate"] {
            let refused = try await portcullis(["state", command, "--config", path])
            #expect(refused.status == 1 && refused.standardError.contains("schema version 99, made by a newer Portcullis"), "\(refused)")
        }
    }

    @Test("state check names what makes a database unusable: a wrong password, nothing listening, an unknown database")
    func unusableDatabasesReportedClearly() async throws {
        let server = try await Self.database.value
        let (path, directory) = try await configuration(database: "unusable")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("not-the-password\n".utf8).write(to: URL(fileURLWithPath: directory + "/db-password"))
        let wrongPassword = try await portcullis(["state", "check", "--config", path])
        #expect(wrongPassword.status == 1, "\(wrongPassword)")
        #expect(wrongPassword.standardError.contains("password authentication failed for user \"portcullis\""), "\(wrongPassword)")

        try Data((PostgresServer.password + "\n").utf8).write(to: URL(fileURLWithPath: directory + "/db-password"))
        let closed = try freeLoopbackPort()
        let configuration = try String(contentsOfFile: path, encoding: .utf8)
        try Data(configuration.replacingOccurrences(of: "127.0.0.1:\(server.port)/", with: "127.0.0.1:\(closed)/").utf8).write(to: URL(fileURLWithPath: path))
        let nothing = try await portcullis(["state", "check", "--config", path])
        #expect(nothing.status == 1, "\(nothing)")
        #expect(nothing.standardError.contains("postgres://portcullis@127.0.0.1:\(closed)/unusable"), "\(nothing)")
        #expect(nothing.standardError.lowercased().contains("connect"), "\(nothing)")

        try Data(configuration.replacingOccurrences(of: "/unusable", with: "/no_such_database").utf8).write(to: URL(fileURLWithPath: path))
        let unknown = try await portcullis(["state", "check", "--config", path])
        #expect(unknown.status == 1 && unknown.standardError.contains("database \"no_such_database\" does not exist"), "\(unknown)")
    }

    @Test("state import copies a robots file and a push_times file; importing them again adds nothing")
    func importIsIdempotent() async throws {
        let (path, directory) = try await configuration(database: "imports")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try await portcullis(["state", "migrate", "--config", path]).checked()
        let robots = """
            {"robots": [{"name": "robot-a", "secretHash": "sha256:11", "labels": {}, "created": 5}, {"name": "robot-b", "secretHash": "sha256:22", "expires": 4102444800, "labels": {}}]}
            """
        let pushes = """
            {"digest":"sha256:\(String(repeating: "a", count: 64))","reference":"v1","repository":"team/app","time":"2026-01-02T03:04:05.678Z"}
            {"digest":"sha256:\(String(repeating: "b", count: 64))","reference":"v2","repository":"team/app","time":"2026-01-03T03:04:05Z"}
            a line cut by a crash
            """
        try Data(robots.utf8).write(to: URL(fileURLWithPath: directory + "/robots.json"))
        try Data(pushes.utf8).write(to: URL(fileURLWithPath: directory + "/push-times.log"))
        let arguments = ["state", "import", "--config", path, "--robots", directory + "/robots.json", "--push-times", directory + "/push-times.log"]
        let first = try await portcullis(arguments)
        #expect(first.succeeded, "\(first)")
        #expect(first.standardOutput.contains("robots: 2 imported, 0 already in the database"), "\(first)")
        #expect(first.standardOutput.contains("push times: 2 imported, 1 lines skipped"), "\(first)")
        let second = try await portcullis(arguments)
        #expect(second.succeeded && second.standardOutput.contains("robots: 0 imported, 2 already in the database"), "\(second)")
        let check = try await portcullis(["state", "check", "--config", path])
        #expect(check.succeeded && check.standardOutput.contains("2 robots, 2 push ledger entries"), "\(check)")
        let times = try await Self.database.value.psql(
            "SELECT reference || '@' || to_char(pushed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') FROM portcullis.push_ledger ORDER BY pushed_at", database: "imports")
        #expect(times == "v1@2026-01-02 03:04:05.678\nv2@2026-01-03 03:04:05.000", "\(times)")
    }

    @Test("check-config: with the postgres store users.robots and retention.push_times are refused with the import command; a password in state.url is refused")
    func stateSectionProblems() async throws {
        let (path, directory) = try await configuration(
            database: "problems",
            stateOverride: """
                state:
                  store: postgres
                  url: postgres://portcullis:secret@127.0.0.1:5432/problems
                """)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let password = try await portcullis(["check-config", "--config", path])
        #expect(password.status != 0 && password.standardError.contains("state.url: must not hold a password: put it in state.password_file"), "\(password)")

        let (files, filesDirectory) = try await configuration(database: "problems_files", extra: "retention:\n  push_times: push-times.log")
        defer { try? FileManager.default.removeItem(atPath: filesDirectory) }
        let text = try String(contentsOfFile: files, encoding: .utf8).replacingOccurrences(of: "  htpasswd: users.htpasswd", with: "  htpasswd: users.htpasswd\n  robots: robots.json")
        try Data(text.utf8).write(to: URL(fileURLWithPath: files))
        let refused = try await portcullis(["check-config", "--config", files])
        #expect(refused.status != 0, "\(refused)")
        #expect(refused.standardError.contains("users.robots: robots live in the database with state.store postgres: import the file once with `portcullis state import --robots FILE`"), "\(refused)")
        #expect(refused.standardError.contains("retention.push_times: pushes are recorded in the database"), "\(refused)")
    }
}
