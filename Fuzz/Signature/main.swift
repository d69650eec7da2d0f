import FuzzHarnesses

// libFuzzer on the signature harness (`FuzzHarness.signature`); `make fuzz` builds and runs it.

/// The callback libFuzzer's own `main` calls, when the link picks that `main`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSignature(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.runOne(.signature, data, size)
}

FuzzDriver.main(.signature)
