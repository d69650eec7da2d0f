import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `make demo`, the README's first command: the commands it prints must work as printed.
@Suite("make demo")
struct DemoTests {
    @Test("portcullis demo starts a registry and Portcullis; every skopeo and curl command it prints works as printed; Ctrl-C stops both and keeps the files")
    func printedCommandsWork() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let demo = try ServiceProcess(
            try portcullisBinary(), ["demo", "--directory", directory, "--port", String(try freeLoopbackPort())], logPath: directory + ".log")
        defer {
            demo.stop()
            try? FileManager.default.removeItem(atPath: directory + ".log")
        }
        var output = ""
        for _ in 0..<600 where !output.contains("Ctrl-C stops") {
            try await Task.sleep(for: .milliseconds(100))
            output = demo.log
        }
        let lines = output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let commands = Array(lines.drop { $0 != "Try:" }.dropFirst().prefix { !$0.isEmpty && !$0.hasPrefix("Ctrl-C") })
        try #require(commands.count == 8, "\(output)")
        let registryPID = try #require(
            lines.first { $0.hasPrefix("registry") }.flatMap { line in
                line.range(of: "(pid ").flatMap { Int32(line[$0.upperBound...].prefix { $0.isNumber }) }
            }, "\(output)")

        func shell(_ script: String) async throws -> CommandResult {
            try await Command("sh", ["-c", script], timeout: .seconds(120)).runInBackground()
        }
        let copy = try await shell(commands[0])
        #expect(copy.succeeded, "\(commands[0]): \(copy)")
        let inspect = try await shell(commands[1])
        #expect(inspect.succeeded && inspect.standardOutput.contains("\"Name\""), "\(inspect)")
        let listTags = try await shell(commands[2])
        #expect(listTags.succeeded && listTags.standardOutput.contains("\"v1\""), "\(listTags)")
        let tags = try await shell(commands[3])
        #expect(tags.standardOutput.contains(#"{"name":"alice/app","tags":["v1"]}"#), "\(tags)")
        let catalog = try await shell(commands[7])
        #expect(catalog.standardOutput.contains("alice/app"), "\(catalog)")
        // The token + DELETE sequence, as one script (TOKEN and DIGEST are shell variables).
        let delete = try await shell(commands[4...6].joined(separator: "\n") + "\necho \"digest=$DIGEST\"")
        #expect(delete.standardOutput.contains("digest=sha256:"), "\(delete)")
        let after = try await shell(commands[3])
        #expect(!after.standardOutput.contains("\"v1\""), "the tag survived the README's delete: \(after)")
        // The printed browser URL serves the login page.
        let browser = try #require(lines.first { $0.hasPrefix("browser") }?.split(separator: " ").first { $0.hasPrefix("http") }, "\(output)")
        let login = try await shell("curl -s -o /dev/null -w '%{http_code}' -L '\(browser)'")
        #expect(login.standardOutput == "200", "\(browser): \(login)")

        // Ctrl-C: both processes stop, the files stay.
        kill(demo.pid, SIGINT)
        for _ in 0..<200 where demo.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!demo.isRunning)
        #expect(demo.log.contains("demo stopped; files kept in \(directory)"))
        var registryGone = false
        for _ in 0..<100 where !registryGone {
            // Gone, or a zombie waiting for whoever adopted it.
            let state = (try? String(contentsOfFile: "/proc/\(registryPID)/stat", encoding: .utf8))?.split(separator: ")").last?.split(separator: " ").first
            registryGone = kill(registryPID, 0) != 0 || state == "Z"
            if !registryGone { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(registryGone, "the demo's registry (pid \(registryPID)) still runs after Ctrl-C")
        #expect(FileManager.default.fileExists(atPath: directory + "/portcullis.yaml"))
    }
}
