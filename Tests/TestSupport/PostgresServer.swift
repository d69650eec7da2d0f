import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real PostgreSQL (Debian's package) on a free loopback port, its data under `directory`,
/// run as the `postgres` user when the tests run as root. It holds a database `portcullis`
/// owned by the role `portcullis` (password ``password``, SCRAM over TCP), as an operator
/// would create for Portcullis's `state.store: postgres`.
public final class PostgresServer: @unchecked Sendable {
    public static let user = "portcullis"
    public static let password = "portcullis-db-secret"
    public static let database = "portcullis"

    public let directory: String
    public let port: Int
    private var process: ServiceProcess?
    private let binaries: String

    /// `state.url` for Portcullis.
    public var url: String { "postgres://\(Self.user)@127.0.0.1:\(port)/\(Self.database)" }
    public var log: String { process?.log ?? "" }
    public var isRunning: Bool { process?.isRunning ?? false }

    /// Creates the cluster (`initdb`), starts it, and creates the role and database.
    public static func start(in directory: String) async throws -> PostgresServer {
        guard let bin = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?.sorted().last.map({ "/usr/lib/postgresql/\($0)/bin" }),
            FileManager.default.isExecutableFile(atPath: bin + "/initdb")
        else { throw HarnessError("PostgreSQL is not installed: run scripts/setup") }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if geteuid() == 0 { try Command("chown", ["postgres:postgres", directory]).run().checked() }
        let server = PostgresServer(directory: directory, port: try freeLoopbackPort(), binaries: bin)
        _ = try await server.asPostgres(
            bin + "/initdb", ["-D", directory + "/data", "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"]
        ).runInBackground().checked()
        try await server.launch()
        _ = try await server.psql("CREATE ROLE \(user) LOGIN PASSWORD '\(password)'")
        _ = try await server.psql("CREATE DATABASE \(database) OWNER \(user)")
        return server
    }

    private init(directory: String, port: Int, binaries: String) {
        self.directory = directory
        self.port = port
        self.binaries = binaries
    }

    deinit {
        stop()
        if ProcessInfo.processInfo.environment["PORTCULLIS_KEEP_TEST_DIRECTORIES"] != "1" {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// `executable` run as `postgres` when the tests run as root (initdb and the server refuse root).
    private func asPostgres(_ executable: String, _ arguments: [String]) throws -> Command {
        guard geteuid() == 0 else { return Command(executable, arguments, timeout: .seconds(120)) }
        guard let setpriv = which("setpriv") else { throw HarnessError("setpriv (util-linux) is not installed") }
        return Command(setpriv, ["--reuid", "postgres", "--regid", "postgres", "--init-groups", "--", executable] + arguments, timeout: .seconds(120))
    }

    private func launch() async throws {
        var command = [binaries + "/postgres", "-D", directory + "/data", "-k", directory, "-p", String(port),
                       "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=100"]
        if geteuid() == 0, let setpriv = which("setpriv") {
            command = [setpriv, "--reuid", "postgres", "--regid", "postgres", "--init-groups", "--"] + command
        }
        process = try ServiceProcess(command[0], Array(command.dropFirst()), logPath: directory + "/server.log")
        for _ in 0..<300 {
            let probe = try await Command(binaries + "/pg_isready", ["-h", "127.0.0.1", "-p", String(port), "-t", "5"], timeout: .seconds(10)).runInBackground()
            if probe.status == 0 { return }
            guard process?.isRunning == true else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError("PostgreSQL on port \(port) did not answer: \(log.suffix(2000))")
    }

    /// Stops the server by its PID with SIGINT (a fast shutdown: open sessions are ended, as when a
    /// database fails over).
    public func stop() {
        process?.stop(signal: SIGINT, grace: .seconds(30))
    }

    /// Starts the server again on the same port with the same data.
    public func restart() async throws {
        stop()
        try await launch()
    }

    /// Runs `sql` as the superuser over the server's socket; returns what psql printed (`-At`).
    public func psql(_ sql: String, database: String = "postgres") async throws -> String {
        try await asPostgres(binaries + "/psql", ["-h", directory, "-p", String(port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .runInBackground().checked().standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
