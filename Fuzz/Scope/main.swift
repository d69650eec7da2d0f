import FuzzHarnesses

// libFuzzer on the scope harness (`FuzzHarness.scope`); `make fuzz` builds and runs it.

/// The callback libFuzzer's own `main` calls, when the link picks that `main`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzScope(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.runOne(.scope, data, size)
}

FuzzDriver.main(.scope)
