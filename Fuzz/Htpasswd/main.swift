import FuzzHarnesses

// libFuzzer on the htpasswd harness (`FuzzHarness.htpasswd`); `make fuzz` builds and runs it.

/// The callback libFuzzer's own `main` calls, when the link picks that `main`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHtpasswd(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.runOne(.htpasswd, data, size)
}

FuzzDriver.main(.htpasswd)
