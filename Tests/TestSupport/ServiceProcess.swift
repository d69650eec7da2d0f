import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A long-running program a test starts (the registry, Portcullis), with its output in a log
/// file. It is stopped by PID with SIGTERM, and every one still running when the test process
/// exits is stopped then too.
public final class ServiceProcess: @unchecked Sendable {
    // `process` is only touched under `lock`.
    private let process: Process
    private let lock = NSLock()
    /// The program's combined standard output and error.
    public let logPath: String
    /// The process id.
    public var pid: Int32 { process.processIdentifier }

    /// Starts `executable` with `arguments`, writing its output to `logPath`.
    public init(_ executable: String, _ arguments: [String], logPath: String, environment: [String: String] = [:]) throws {
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        handle.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        var environment = environment
        for (key, value) in ProcessInfo.processInfo.environment where environment[key] == nil {
            environment[key] = value
        }
        process.environment = environment
        try process.run()
        self.process = process
        self.logPath = logPath
        RunningServices.shared.add(process.processIdentifier)
    }

    /// Whether the program is still running.
    public var isRunning: Bool { lock.withLock { process.isRunning } }

    /// Sends SIGTERM and waits for the program to exit (SIGKILL after `grace`).
    public func stop(grace: Duration = .seconds(10)) {
        lock.withLock {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGTERM)
            let deadline = ContinuousClock.now + grace
            while process.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        RunningServices.shared.remove(process.processIdentifier)
    }

    /// The exit status once stopped.
    public var terminationStatus: Int32 { lock.withLock { process.terminationStatus } }

    /// Everything the program has printed so far.
    public var log: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
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
    let result = try Command(
        "python3", ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"]
    ).run().checked()
    guard let port = Int(result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw HarnessError("python3 printed no port: \(result)")
    }
    return port
}

/// Waits until `url` answers with any HTTP status, or throws after `timeout`.
public func waitUntilAnswering(_ url: String, timeout: Duration = .seconds(60), curlOptions: [String] = []) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        let result = try Command("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2"] + curlOptions + [url]).run()
        if result.standardOutput != "000" && !result.standardOutput.isEmpty { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw ServiceTimeout(url: url)
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
