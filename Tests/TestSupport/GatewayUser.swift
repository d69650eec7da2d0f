import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The unprivileged user Portcullis runs as in the tests, as in production (deploy/k8s:
/// `runAsUser: 65532`, no capabilities), so that behaviour that only root gets away with (a
/// socket option only root may set, a file only root may read) fails a test instead of a pod.
///
/// When the tests run as root, Portcullis is started through `setpriv` with UID and GID 65532,
/// no supplementary groups and no capabilities, and a deployment's directory is handed to that
/// user. A developer who runs the tests unprivileged runs Portcullis as themselves.
public enum GatewayUser {
    /// The UID and GID of the deploy/k8s manifests' `securityContext`.
    public static let id = 65532

    /// Whether Portcullis is started as ``id`` (the tests run as root).
    public static var dropsPrivileges: Bool { geteuid() == 0 }

    /// The command line that runs `executable` with `arguments` as the gateway user.
    public static func command(_ executable: String, _ arguments: [String]) throws -> (executable: String, arguments: [String]) {
        guard dropsPrivileges else { return (executable, arguments) }
        guard let setpriv = which("setpriv") else { throw HarnessError("setpriv (util-linux) is not installed") }
        return (
            setpriv,
            ["--reuid", String(id), "--regid", String(id), "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--", try reachable(executable)]
                + arguments
        )
    }

    /// Gives `directory` and everything in it to the gateway user: keys, htpasswd and
    /// configuration are written by root (the harness, Portcullis's own CLI) with modes that keep
    /// others out, as an installation's are; Portcullis writes its audit log and records there.
    public static func handOver(_ directory: String) throws {
        guard dropsPrivileges else { return }
        try Command("chown", ["-R", "\(id):\(id)", directory]).run().checked()
    }

    /// `portcullis ARGUMENTS` run as the gateway user, as an operator runs it in the pod
    /// (`kubectl exec`): for the commands that write files the running Portcullis reads
    /// (`robot create`, `robot revoke`).
    public static func portcullis(_ arguments: [String], timeout: Duration? = nil) throws -> Command {
        let command = try command(try portcullisBinary(), arguments)
        return Command(command.executable, command.arguments, timeout: timeout)
    }

    /// Like ``portcullis(_:timeout:)``, with standard error sent into standard output (`2>&1`), as
    /// a script that captures both together sees them: their order is the order of the writes.
    public static func portcullisMergingOutput(_ arguments: [String]) throws -> Command {
        let binary = dropsPrivileges ? try reachable(try portcullisBinary()) : try portcullisBinary()
        let words = ([binary] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let command = try command("/bin/sh", ["-c", "exec " + words.joined(separator: " ") + " 2>&1"])
        return Command(command.executable, command.arguments)
    }

    /// `executable`, or a copy the gateway user can reach when a directory on its path is closed
    /// to others (a checkout under /root, say).
    private static func reachable(_ executable: String) throws -> String {
        try copies.withLock { copies in
            if let copy = copies[executable] { return copy }
            let probe = try Command(
                "setpriv", ["--reuid", String(id), "--regid", String(id), "--clear-groups", "test", "-x", executable]
            ).run()
            var path = executable
            if probe.status != 0 {
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-bin-\(UUID().uuidString.prefix(8))").path
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
                path = directory + "/" + URL(fileURLWithPath: executable).lastPathComponent
                try FileManager.default.copyItem(atPath: executable, toPath: path)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            }
            copies[executable] = path
            return path
        }
    }

    private static let copies = Mutex<[String: String]>([:])
}
