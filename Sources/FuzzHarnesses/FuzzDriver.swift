#if PORTCULLIS_LIBFUZZER
import CLibFuzzer
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Runs one harness under libFuzzer.
///
/// The fuzz executables are ordinary SwiftPM executables whose `main` hands the command line to
/// `LLVMFuzzerRunDriver`, so libFuzzer's options (`-max_total_time=`, corpus directories,
/// `-runs=`) work as usual. libFuzzer is linked only in `make fuzz`'s build
/// (`-sanitize=fuzzer,address -DPORTCULLIS_LIBFUZZER`); a plain `swift build` makes
/// executables that say so and exit.
package enum FuzzDriver {
    /// The harness libFuzzer's C callback runs; set once before the driver starts.
    nonisolated(unsafe) private static var harness = FuzzHarness.scope

    /// Runs one libFuzzer input; a finding traps, which libFuzzer records as a crash and saves.
    package static func runOne(_ harness: FuzzHarness, _ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        let input = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
        do {
            try harness.run(input)
        } catch {
            fatalError("fuzz finding: \(error)")
        }
        return 0
    }

    /// Starts libFuzzer on `harness` and exits with its status.
    package static func main(_ harness: FuzzHarness) -> Never {
        #if PORTCULLIS_LIBFUZZER
        self.harness = harness
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            FuzzDriver.runOne(FuzzDriver.harness, data, size)
        }
        exit(status)
        #else
        let message = "fuzz-\(harness.rawValue): built without libFuzzer; run `make fuzz` (or `make fuzz-smoke`)\n"
        _ = message.withCString { write(2, $0, strlen($0)) }
        exit(2)
        #endif
    }
}
