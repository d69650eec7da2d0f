import FuzzHarnesses

// libFuzzer on the configuration harness (`FuzzHarness.configuration`); `make fuzz` builds and runs it.

/// The callback libFuzzer's own `main` calls, when the link picks that `main`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfiguration(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.runOne(.configuration, data, size)
}

FuzzDriver.main(.configuration)
