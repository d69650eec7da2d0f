import CSpawn
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A program started with `posix_spawn` and reaped with `waitpid` on its own pid.
///
/// Foundation's `Process` learns that a child ended from a socket the child inherits; on Linux it
/// misses the end when that socket outlives the child, and `waitUntilExit()` then waits forever
/// beside a zombie (swift-corelibs-foundation issue 4795, seen here as a hung CI run). This type
/// waits for the exit itself:
///
/// - A thread per child blocks in `waitid(WNOWAIT)` until the child has ended, then reaps it
///   under a lock. ``signal(_:)`` takes the same lock and only signals a child not yet reaped, so
///   a signal never reaches a recycled pid.
/// - The child gets exactly the three descriptors it is given (descriptors 3 and up are closed),
///   an empty signal mask and default signal actions, whatever the spawning thread had.
public final class ChildProcess: @unchecked Sendable {
    /// How a child ended.
    public enum Termination: Sendable, Equatable, CustomStringConvertible {
        /// It exited with this status.
        case exited(Int32)
        /// A signal with this number ended it.
        case signalled(Int32)

        /// The exit status, or the signal number (as Foundation's `terminationStatus` gives it).
        public var status: Int32 {
            switch self {
            case .exited(let status), .signalled(let status): status
            }
        }

        /// Whether a signal ended it.
        public var bySignal: Bool {
            if case .signalled = self { true } else { false }
        }

        public var description: String {
            switch self {
            case .exited(let status): "exit \(status)"
            case .signalled(let signal): "signal \(signal)"
            }
        }
    }

    /// Why a child could not be started.
    public struct LaunchError: Error, CustomStringConvertible {
        /// The program.
        public var path: String
        /// The failing call and its errno description.
        public var reason: String
        public var description: String { "cannot start \(path): \(reason)" }
    }

    /// The child's process id.
    public let pid: pid_t
    private let lock = NSCondition()
    // Under `lock`:
    private var ended: Termination?
    private var waiters: [CheckedContinuation<Termination, Never>] = []

    /// Starts `path` with `arguments`, exactly `environment`, and the given descriptors as its
    /// standard input, output and error (`nil`: /dev/null). The caller keeps its descriptors and
    /// closes them when it wants.
    public init(
        _ path: String, _ arguments: [String], environment: [String: String], currentDirectory: String? = nil,
        standardInput: Int32? = nil, standardOutput: Int32? = nil, standardError: Int32? = nil
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (descriptor, target) in [(standardInput, Int32(0)), (standardOutput, 1), (standardError, 2)] {
            if let descriptor {
                posix_spawn_file_actions_adddup2(&actions, descriptor, target)
            } else {
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            }
        }
        cspawn_file_actions_addclosefrom(&actions, 3)
        if let currentDirectory { cspawn_file_actions_addchdir(&actions, currentDirectory) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard result == 0 else { throw LaunchError(path: path, reason: "posix_spawn: \(String(cString: strerror(result)))") }
        self.pid = pid
        Thread.detachNewThread { [self] in reap() }
    }

    /// Blocks until the child has ended, then reaps it and wakes every waiter.
    private func reap() {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR {}
        lock.lock()
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        // The wait status: the low seven bits are the signal that ended it, 0 for an exit.
        let termination: Termination = status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
        ended = termination
        let resumed = waiters
        waiters = []
        lock.broadcast()
        lock.unlock()
        for waiter in resumed { waiter.resume(returning: termination) }
    }

    /// Whether the child has not ended yet.
    public var isRunning: Bool { termination == nil }

    /// How the child ended; `nil` while it runs.
    public var termination: Termination? {
        lock.lock()
        defer { lock.unlock() }
        return ended
    }

    /// Sends `signal` to the child if it has not been reaped yet.
    public func signal(_ signal: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if ended == nil { kill(pid, signal) }
    }

    /// Blocks the calling thread until the child ends.
    @discardableResult
    public func waitUntilExit() -> Termination {
        lock.lock()
        defer { lock.unlock() }
        while ended == nil { lock.wait() }
        return ended!
    }

    /// Suspends the caller, without holding a thread, until the child ends.
    @discardableResult
    public func exited() async -> Termination {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let ended {
                lock.unlock()
                continuation.resume(returning: ended)
            } else {
                waiters.append(continuation)
                lock.unlock()
            }
        }
    }

    /// Waits up to `timeout` for the child to end.
    /// - Returns: How it ended, or `nil` if it still runs.
    public func waitUntilExit(timeout: Duration) -> Termination? {
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        let deadline = Date(timeIntervalSinceNow: seconds)
        lock.lock()
        defer { lock.unlock() }
        while ended == nil && lock.wait(until: deadline) {}
        return ended
    }

    /// A pipe whose two ends are closed in every child that does not get them as standard
    /// descriptors: `(read, write)`.
    public static func pipe() throws -> (read: Int32, write: Int32) {
        var descriptors: [Int32] = [-1, -1]
        guard cspawn_pipe_cloexec(&descriptors) == 0 else {
            throw LaunchError(path: "pipe", reason: "pipe2: \(String(cString: strerror(errno)))")
        }
        return (descriptors[0], descriptors[1])
    }
}
