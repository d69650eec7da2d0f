import FuzzHarnesses

// libFuzzer on the token harness (`FuzzHarness.token`); `make fuzz` builds and runs it.

/// The callback libFuzzer's own `main` calls, when the link picks that `main`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzToken(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.runOne(.token, data, size)
}

FuzzDriver.main(.token)
