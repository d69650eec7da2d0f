import Foundation

/// Runs an external program to completion and collects what it printed.
///
/// ```swift
/// let result = try Command("htpasswd", ["-nbB", "alice", "secret"]).run()
/// #expect(result.status == 0, "\(result)")
/// let line = result.standardOutput
/// ```
///
/// - The executable is either a path (anything containing `/`) or a bare name looked up with
///   ``which(_:)`` on the `PATH` the child will see. A name that cannot be found throws
///   ``CommandError/executableNotFound(_:searchPath:)``, so a missing tool fails a test with a
///   clear message instead of skipping it.
/// - Standard input, output and error are pipes. Input is written and both outputs are read
///   concurrently, so a program that prints a lot before reading its input cannot deadlock.
/// - A non-zero exit status is *not* an error: look at ``CommandResult/status``, or call
///   ``CommandResult/checked()`` to turn it into one.
public struct Command: Sendable, CustomStringConvertible {
    /// A path (containing `/`) or a name to look up on `PATH`.
    public var executable: String
    /// The arguments, without the program name.
    public var arguments: [String]
    /// Bytes written to the program's standard input, which is then closed. With `nil` the
    /// program reads an empty, closed input.
    public var standardInput: Data?
    /// Variables set for the program, on top of the inherited ones when
    /// ``inheritsEnvironment`` is `true`.
    public var environment: [String: String]
    /// Whether the program starts with this process's environment (then amended by
    /// ``environment``) or with ``environment`` alone.
    public var inheritsEnvironment: Bool
    /// The working directory; `nil` keeps the current one.
    public var currentDirectory: String?
    /// The longest the program may run before it is sent SIGTERM (and, a second later, SIGKILL);
    /// `nil` waits forever. A program stopped this way has ``CommandResult/timedOut`` set.
    public var timeout: Duration?

    /// Describes a program run.
    /// - Parameters:
    ///   - executable: A path, or a name looked up on `PATH`.
    ///   - arguments: The arguments, without the program name.
    ///   - standardInput: Bytes for the program's standard input.
    ///   - environment: Variables to set (added to the inherited environment unless
    ///     `inheritsEnvironment` is `false`).
    ///   - inheritsEnvironment: Whether to start from this process's environment.
    ///   - currentDirectory: The working directory.
    ///   - timeout: How long the program may run.
    public init(
        _ executable: String,
        _ arguments: [String] = [],
        standardInput: Data? = nil,
        environment: [String: String] = [:],
        inheritsEnvironment: Bool = true,
        currentDirectory: String? = nil,
        timeout: Duration? = nil
    ) {
        self.executable = executable
        self.arguments = arguments
        self.standardInput = standardInput
        self.environment = environment
        self.inheritsEnvironment = inheritsEnvironment
        self.currentDirectory = currentDirectory
        self.timeout = timeout
    }

    /// Describes a program run whose standard input is `input` encoded as UTF-8.
    public init(
        _ executable: String,
        _ arguments: [String] = [],
        input: String,
        environment: [String: String] = [:],
        inheritsEnvironment: Bool = true,
        currentDirectory: String? = nil,
        timeout: Duration? = nil
    ) {
        self.init(
            executable, arguments, standardInput: Data(input.utf8), environment: environment,
            inheritsEnvironment: inheritsEnvironment, currentDirectory: currentDirectory, timeout: timeout)
    }

    /// The command line, for messages (arguments with spaces are quoted; input is not shown).
    public var description: String {
        ([executable] + arguments).map { $0.contains(where: { $0 == " " || $0 == "\"" }) || $0.isEmpty ? "'\($0)'" : $0 }
            .joined(separator: " ")
    }

    /// The environment the child starts with.
    public var effectiveEnvironment: [String: String] {
        var result = inheritsEnvironment ? ProcessInfo.processInfo.environment : [:]
        result.merge(environment) { _, new in new }
        return result
    }

    /// Runs the program and waits for it, blocking the calling thread.
    /// - Returns: The exit status and everything the program printed.
    /// - Throws: ``CommandError/executableNotFound(_:searchPath:)`` or
    ///   ``CommandError/launchFailed(_:reason:)``; never for a non-zero exit status.
    public func run() throws -> CommandResult {
        let environment = effectiveEnvironment
        let path: String
        if executable.contains("/") {
            path = executable
        } else {
            guard let found = which(executable, searchPath: environment["PATH"]) else {
                throw CommandError.executableNotFound(executable, searchPath: environment["PATH"] ?? "")
            }
            path = found
        }

        let input = try ChildProcess.pipe()
        let output = try ChildProcess.pipe()
        let errors = try ChildProcess.pipe()
        let started = ContinuousClock.now
        let child: ChildProcess
        do {
            child = try ChildProcess(
                path, arguments, environment: environment, currentDirectory: currentDirectory,
                standardInput: input.read, standardOutput: output.write, standardError: errors.write)
        } catch {
            for descriptor in [input.read, input.write, output.read, output.write, errors.read, errors.write] { close(descriptor) }
            throw CommandError.launchFailed(description, reason: "\(error)")
        }
        // The child's ends are its own now: the readers see the end of output when it exits.
        for descriptor in [input.read, output.write, errors.write] { close(descriptor) }

        // Feed and drain the pipes on their own threads so that neither side can block the other.
        let outputReader = PipeReader(FileHandle(fileDescriptor: output.read, closeOnDealloc: false))
        let errorReader = PipeReader(FileHandle(fileDescriptor: errors.read, closeOnDealloc: false))
        let writer = PipeWriter(FileHandle(fileDescriptor: input.write, closeOnDealloc: false), data: standardInput ?? Data())
        let watchdog = Watchdog(child: child, timeout: timeout)

        let termination = child.waitUntilExit()
        watchdog.cancel()
        writer.wait()
        let standardOutput = outputReader.wait()
        let standardError = errorReader.wait()

        return CommandResult(
            command: description,
            status: termination.status,
            exitedBySignal: termination.bySignal,
            timedOut: watchdog.fired && termination.bySignal,
            standardOutputData: standardOutput,
            standardErrorData: standardError,
            duration: ContinuousClock.now - started
        )
    }

    /// Runs the program on a thread of its own and suspends the caller until it ends, so that
    /// a long-running program does not occupy a thread of Swift's cooperative pool.
    public func runInBackground() async throws -> CommandResult {
        try await withCheckedThrowingContinuation { continuation in
            let command = self
            Thread.detachNewThread {
                continuation.resume(with: Result { try command.run() })
            }
        }
    }

    /// Runs `executable` with `arguments` and returns the result; a shorthand for
    /// `Command(executable, arguments, ...).run()`.
    @discardableResult
    public static func run(
        _ executable: String,
        _ arguments: [String] = [],
        standardInput: Data? = nil,
        environment: [String: String] = [:],
        timeout: Duration? = nil
    ) throws -> CommandResult {
        try Command(executable, arguments, standardInput: standardInput, environment: environment, timeout: timeout).run()
    }
}

/// What a program run by ``Command`` did.
public struct CommandResult: Sendable, CustomStringConvertible {
    /// The command line that ran, for messages.
    public var command: String
    /// The exit status; the signal number when ``exitedBySignal`` is `true`.
    public var status: Int32
    /// Whether the program was ended by a signal rather than exiting.
    public var exitedBySignal: Bool
    /// Whether the program was stopped because it ran past ``Command/timeout``.
    public var timedOut: Bool
    /// Everything written to standard output.
    public var standardOutputData: Data
    /// Everything written to standard error.
    public var standardErrorData: Data
    /// How long the program ran.
    public var duration: Duration

    /// Creates a result (for tests of code that consumes results).
    public init(
        command: String, status: Int32, exitedBySignal: Bool = false, timedOut: Bool = false,
        standardOutputData: Data, standardErrorData: Data, duration: Duration = .zero
    ) {
        self.command = command
        self.status = status
        self.exitedBySignal = exitedBySignal
        self.timedOut = timedOut
        self.standardOutputData = standardOutputData
        self.standardErrorData = standardErrorData
        self.duration = duration
    }

    /// Standard output as UTF-8 (invalid sequences replaced).
    public var standardOutput: String { String(decoding: standardOutputData, as: UTF8.self) }
    /// Standard error as UTF-8 (invalid sequences replaced).
    public var standardError: String { String(decoding: standardErrorData, as: UTF8.self) }
    /// Whether the program exited on its own with status 0.
    public var succeeded: Bool { status == 0 && !exitedBySignal && !timedOut }

    /// Returns `self` when the program succeeded.
    /// - Throws: ``CommandError/failed(_:)`` carrying this result otherwise.
    @discardableResult
    public func checked() throws -> CommandResult {
        guard succeeded else { throw CommandError.failed(self) }
        return self
    }

    public var description: String {
        let how =
            timedOut ? "timed out" : exitedBySignal ? "was killed by signal \(status)" : "exited with status \(status)"
        var text = "`\(command)` \(how)"
        if !standardError.isEmpty { text += "\n--- stderr ---\n" + standardError }
        if !standardOutput.isEmpty { text += "\n--- stdout ---\n" + standardOutput }
        return text
    }
}

/// Why ``Command`` could not produce a (successful) result.
public enum CommandError: Error, CustomStringConvertible {
    /// The program is not on `PATH`.
    case executableNotFound(String, searchPath: String)
    /// The program could not be started.
    case launchFailed(String, reason: String)
    /// The program ran but did not succeed (thrown only by ``CommandResult/checked()``).
    case failed(CommandResult)

    public var description: String {
        switch self {
        case .executableNotFound(let name, let searchPath):
            "required program `\(name)` was not found on PATH (\(searchPath)); install it"
        case .launchFailed(let command, let reason):
            "cannot start `\(command)`: \(reason)"
        case .failed(let result):
            result.description
        }
    }
}

/// The full path of the executable `name` would run as, looked up on `PATH` like a shell does;
/// `nil` when there is none. A `name` containing `/` is returned as is if it is executable.
public func which(_ name: String) -> String? {
    which(name, searchPath: ProcessInfo.processInfo.environment["PATH"])
}

/// ``which(_:)`` against an explicit search path (`nil` means the shell's default).
public func which(_ name: String, searchPath: String?) -> String? {
    let fileManager = FileManager.default
    func isExecutableFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return fileManager.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
            && fileManager.isExecutableFile(atPath: path)
    }
    guard !name.isEmpty else { return nil }
    if name.contains("/") { return isExecutableFile(name) ? name : nil }
    let directories = (searchPath ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false)
    for directory in directories {
        let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + name
        if isExecutableFile(candidate) { return candidate }
    }
    return nil
}

// MARK: - Plumbing

/// Writes bytes into a pipe and closes it, on a thread of its own.
private final class PipeWriter: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle, data: Data) {
        Thread.detachNewThread { [self] in
            // A program that exits without reading its input makes the write fail (EPIPE); that
            // is its business, not an error of the run.
            if !data.isEmpty { try? handle.write(contentsOf: data) }
            try? handle.close()
            done.signal()
        }
    }

    func wait() { done.wait() }
}

/// Stops a process that runs too long.
private final class Watchdog: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    private var didFire = false

    init(child: ChildProcess, timeout: Duration?) {
        guard let timeout else { return }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [self] in
            guard child.isRunning, fire() else { return }
            child.signal(SIGTERM)
            DispatchQueue.global().asyncAfter(deadline: .now() + 1) { child.signal(SIGKILL) }
        }
    }

    /// Marks the watchdog as fired unless the process already ended.
    private func fire() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard !cancelled else { return false }
        didFire = true
        return true
    }

    func cancel() {
        lock.lock()
        cancelled = true
        lock.unlock()
    }

    var fired: Bool {
        lock.lock()
        defer { lock.unlock() }
        return didFire
    }
}
