import FuzzHarnesses

// libFuzzer on the route harness (`FuzzHarness.route`); `make fuzz` builds and runs it.

/// The callback libFuzzer's own `main` calls, when the link picks that `main`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRoute(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.runOne(.route, data, size)
}

FuzzDriver.main(.route)
