import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A long-running program a test starts (the registry, Portcullis), with its output in a log
/// file. It is stopped by PID with SIGTERM, and every one still running when the test process
/// exits is stopped then too.
public final class ServiceProcess: @unchecked Sendable {
    private let child: ChildProcess
    private let stopping = NSLock()
    /// The program's combined standard output and error.
    public let logPath: String
    /// The process id.
    public var pid: Int32 { child.pid }

    /// Starts `executable` with `arguments`, writing its output to `logPath`.
    public init(_ executable: String, _ arguments: [String], logPath: String, environment: [String: String] = [:]) throws {
        let log = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        guard log >= 0 else { throw HarnessError("cannot open \(logPath): \(String(cString: strerror(errno)))") }
        defer { close(log) }
        var environment = environment
        for (key, value) in ProcessInfo.processInfo.environment where environment[key] == nil {
            environment[key] = value
        }
        child = try ChildProcess(executable, arguments, environment: environment, standardOutput: log, standardError: log)
        self.logPath = logPath
        RunningServices.shared.add(child.pid)
    }

    /// Starts Portcullis (`executable` with `arguments`) as ``GatewayUser``: UID and GID 65532, no
    /// capabilities, when the tests run as root.
    public static func gateway(_ executable: String, _ arguments: [String], logPath: String, environment: [String: String] = [:]) throws -> ServiceProcess {
        let command = try GatewayUser.command(executable, arguments)
        return try ServiceProcess(command.executable, command.arguments, logPath: logPath, environment: environment)
    }

    /// Whether the program is still running.
    public var isRunning: Bool { child.isRunning }

    /// Sends `signal` (SIGTERM unless told) and waits for the program to exit (SIGKILL after `grace`).
    public func stop(signal: Int32 = SIGTERM, grace: Duration = .seconds(10)) {
        stopping.withLock {
            guard child.isRunning else { return }
            child.signal(signal)
            if child.waitUntilExit(timeout: grace) == nil { child.signal(SIGKILL) }
            child.waitUntilExit()
        }
        RunningServices.shared.remove(child.pid)
    }

    /// Waits up to `timeout` for the program to exit by itself (a signal sent before, say).
    /// - Returns: its exit status (the signal number if a signal ended it), or `nil` if it still runs.
    public func exited(timeout: Duration) async -> Int32? {
        let child = child
        let status = await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: child.waitUntilExit(timeout: timeout)?.status) }
        }
        if status != nil { RunningServices.shared.remove(child.pid) }
        return status
    }

    /// The exit status once stopped (the signal number if a signal ended it); -1 while it runs.
    public var terminationStatus: Int32 { child.termination?.status ?? -1 }

    /// Everything the program has printed so far.
    public var log: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// The program's output once `condition` holds for it, or as it is after `timeout`. A request
    /// line is written after its response went out, so a client may have its answer before the
    /// line is in the file.
    public func log(once condition: (String) -> Bool, timeout: Duration = .seconds(10)) async -> String {
        await text({ self.log }, once: condition, timeout: timeout)
    }

    /// Peak resident memory (VmHWM) of the process, in KiB, from /proc.
    public var peakResidentKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }
}

/// PIDs of services still running, stopped when the test process exits.
final class RunningServices: Sendable {
    static let shared = RunningServices()
    private let pids = Mutex<Set<Int32>>([])

    private init() {
        atexit {
            for pid in RunningServices.shared.pids.withLock({ $0 }) { kill(pid, SIGTERM) }
        }
    }

    func add(_ pid: Int32) { pids.withLock { _ = $0.insert(pid) } }
    func remove(_ pid: Int32) { pids.withLock { _ = $0.remove(pid) } }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now, chosen by the kernel.
public func freeLoopbackPort() throws -> Int {
    // Outside the kernel's ephemeral range (ip_local_port_range, 32768-60999 by default): a port
    // from bind(0) is one that any outgoing connection of a concurrent test may take as its source
    // port before the service binds it. Ports handed out once are never handed out again.
    for _ in 0..<200 {
        let port = Int.random(in: 20_000..<32_000)
        guard LoopbackPorts.claim(port) else { continue }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw HarnessError("socket() failed: errno \(errno)") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if bound == 0 { return port }
    }
    throw HarnessError("no free loopback port between 20000 and 32000")
}

/// Ports ``freeLoopbackPort()`` has handed out in this process.
private enum LoopbackPorts {
    static let claimed = Mutex<Set<Int>>([])
    static func claim(_ port: Int) -> Bool { claimed.withLock { $0.insert(port).inserted } }
}

/// Waits until `url` answers with any HTTP status, or throws after `timeout`. Each attempt runs
/// off Swift's cooperative pool, and one attempt is made after the deadline too: on a loaded
/// machine the wait itself may have been scheduled late.
public func waitUntilAnswering(_ url: String, timeout: Duration = .seconds(90), curlOptions: [String] = []) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        let pastDeadline = ContinuousClock.now >= deadline
        let result = try await Command("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"] + curlOptions + [url]).runInBackground()
        if result.standardOutput != "000" && !result.standardOutput.isEmpty { return }
        if pastDeadline { throw ServiceTimeout(url: url) }
        try await Task.sleep(for: .milliseconds(100))
    }
}

/// What `read` returns once `condition` holds for it, or after `timeout`: for a log file that a
/// service writes to after it answered.
public func text(_ read: () -> String, once condition: (String) -> Bool, timeout: Duration = .seconds(10)) async -> String {
    let deadline = ContinuousClock.now + timeout
    while true {
        let current = read()
        if condition(current) || ContinuousClock.now >= deadline { return current }
        try? await Task.sleep(for: .milliseconds(50))
    }
}

/// A test harness step failed; the message says which.
public struct HarnessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A service did not come up in time.
public struct ServiceTimeout: Error, CustomStringConvertible {
    public var url: String
    public var description: String { "\(url) did not answer in time" }
}
