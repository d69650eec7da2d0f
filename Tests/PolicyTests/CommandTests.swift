import Foundation
import Testing
import TestSupport

/// The process helper the Policy tests (and other test targets) rely on.
@Suite("TestSupport Command helper")
struct CommandTests {
    @Test("stdout, stderr and the exit status are kept apart")
    func separatesStreams() throws {
        let result = try Command("sh", ["-c", "echo out; echo err >&2; exit 3"]).run()
        #expect(result.status == 3)
        #expect(!result.succeeded)
        #expect(result.standardOutput == "out\n")
        #expect(result.standardError == "err\n")
        #expect(throws: CommandError.self) { try result.checked() }
        #expect(try Command("true").run().checked().succeeded)
    }

    @Test("standard input reaches the program, and a megabyte each way does not deadlock")
    func feedsInputWithoutDeadlock() throws {
        let big = Data(repeating: UInt8(ascii: "x"), count: 1 << 20)
        let echoed = try Command("sh", ["-c", "cat; cat /dev/null >&2"], standardInput: big).run().checked()
        #expect(echoed.standardOutputData == big)
        let both = try Command("sh", ["-c", "head -c 1048576 /dev/zero >&2; head -c 1048576 /dev/zero"]).run().checked()
        #expect(both.standardOutputData.count == 1 << 20)
        #expect(both.standardErrorData.count == 1 << 20)
        #expect(try Command("cat", input: "héllo").run().standardOutput == "héllo")
    }

    @Test("environment variables are added to, or replace, the inherited environment")
    func environment() throws {
        let added = try Command("sh", ["-c", "printf '%s|%s' \"$PORTCULLIS_TEST\" \"${HOME:+home}\""], environment: ["PORTCULLIS_TEST": "v 1"]).run()
        #expect(added.standardOutput == "v 1|home")
        let alone = try Command(
            "/bin/sh", ["-c", "printf '%s|%s' \"$PORTCULLIS_TEST\" \"${HOME:-none}\""], environment: ["PORTCULLIS_TEST": "only"],
            inheritsEnvironment: false
        ).run()
        #expect(alone.standardOutput == "only|none")
    }

    @Test("the working directory can be chosen")
    func workingDirectory() throws {
        #expect(try Command("pwd", currentDirectory: "/").run().standardOutput == "/\n")
    }

    @Test("a missing program is an executableNotFound error naming it, not a skipped test")
    func missingProgram() {
        do {
            _ = try Command("portcullis-no-such-tool-\(UInt32.random(in: 0...UInt32.max))").run()
            Issue.record("a missing program did not throw")
        } catch let error as CommandError {
            guard case .executableNotFound(let name, _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(name.hasPrefix("portcullis-no-such-tool-"))
            #expect(error.description.contains("was not found on PATH"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(throws: CommandError.self) { try Command("/nonexistent/bin/tool").run() }
    }

    @Test("a program that outlives its timeout is stopped and reported as timed out")
    func timeout() throws {
        let result = try Command("sleep", ["30"], timeout: .milliseconds(200)).run()
        #expect(result.timedOut)
        #expect(!result.succeeded)
        #expect(result.duration < .seconds(10))
        let quick = try Command("true", timeout: .seconds(30)).run()
        #expect(!quick.timedOut)
        #expect(quick.succeeded)
    }

    @Test("runInBackground gives the same result without blocking the caller's thread")
    func background() async throws {
        let result = try await Command("sh", ["-c", "echo hi"]).runInBackground()
        #expect(result.standardOutput == "hi\n")
    }

    @Test("a program gets only standard input, output and error, with default signal actions and no blocked signal")
    func childStartsClean() throws {
        let descriptors = try Command("ls", ["/proc/self/fd"]).run().checked().standardOutput.split(separator: "\n")
        // 0-2, and the directory ls itself opened to list.
        #expect(Set(descriptors).isSubset(of: ["0", "1", "2", "3"]), "\(descriptors)")
        // Bit n-1 stands for signal n; signals 32 and up are the C library's own.
        let status = try Command("grep", ["-E", "^Sig(Blk|Ign):", "/proc/self/status"]).run().checked().standardOutput
        let masks = status.split(separator: "\n").compactMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) }
        #expect(masks.count == 2 && masks.allSatisfy { $0 & 0x7fff_ffff == 0 }, "\(status)")
    }

    @Test("sixty programs run at once all end and each keeps its own output")
    func manyAtOnce() async throws {
        let results = try await withThrowingTaskGroup(of: (Int, CommandResult).self) { group in
            for index in 0..<60 {
                group.addTask { (index, try await Command("sh", ["-c", "echo \(index)"]).runInBackground()) }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        #expect(results.count == 60)
        #expect(results.allSatisfy { $0.value.standardOutput == "\($0.key)\n" && $0.value.succeeded })
    }

    @Test("a service started while a command runs does not hold the command's pipes: the command ends with its program")
    func serviceDoesNotInheritPipes() async throws {
        let command = Task { try await Command("sh", ["-c", "sleep 1; echo done"]).runInBackground() }
        try await Task.sleep(for: .milliseconds(200))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-command-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let service = try ServiceProcess("/bin/sleep", ["60"], logPath: directory + "/sleep.log")
        defer { service.stop() }
        let result = try await command.value
        #expect(result.standardOutput == "done\n")
        #expect(service.isRunning, "the service outlived the command: the command's end was not waiting for it")
        service.stop()
        #expect(!service.isRunning && service.terminationStatus == SIGTERM, "SIGTERM stops a service: \(service.terminationStatus)")
    }

    @Test("which finds executables on PATH and nothing else")
    func whichFindsExecutables() {
        let sh = which("sh")
        #expect(sh != nil)
        #expect(sh.map { FileManager.default.isExecutableFile(atPath: $0) } == true)
        #expect(which("/bin/sh") == "/bin/sh")
        #expect(which("portcullis-no-such-tool") == nil)
        #expect(which("") == nil)
        #expect(which("/etc/hostname") == nil || FileManager.default.isExecutableFile(atPath: "/etc/hostname"))
        #expect(which("sh", searchPath: "/nonexistent") == nil)
    }
}
