import Foundation
import FuzzHarnesses
import Testing

/// Replays the committed fuzz corpus and every saved crash (`Fuzz/Regressions/<harness>/`)
/// through the harnesses the libFuzzer executables run, without the sanitizers, so a crash once
/// found stays fixed in every `swift test`.
@Suite("fuzz corpus and regressions")
struct FuzzRegressionTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static func inputs(_ harness: FuzzHarness, in folder: String) -> [URL] {
        let directory = fuzzDirectory.appendingPathComponent(folder).appendingPathComponent(harness.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().map { directory.appendingPathComponent($0) }
    }

    @Test("every seed and saved crash passes its harness's invariants", arguments: FuzzHarness.allCases)
    func corpusPasses(harness: FuzzHarness) throws {
        let seeds = Self.inputs(harness, in: "Corpus")
        #expect(!seeds.isEmpty, "Fuzz/Corpus/\(harness.rawValue) has no seeds")
        for file in seeds + Self.inputs(harness, in: "Regressions") {
            let bytes = try [UInt8](Data(contentsOf: file))
            do {
                try harness.run(bytes)
            } catch {
                Issue.record("\(file.lastPathComponent): \(error)")
            }
        }
    }
}
