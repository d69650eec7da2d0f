/// The fuzzed entry points, one per parser that reads untrusted or operator-written text.
///
/// Each harness feeds the bytes to the parser and checks the invariants a correct parser keeps
/// whatever the input; a thrown parse error is an expected outcome, a ``FuzzFinding`` is a bug.
/// The `fuzz-*` executables call these from `LLVMFuzzerTestOneInput`, and the regression tests
/// replay the committed corpus and every saved crash through them.
package enum FuzzHarness: String, CaseIterable, Sendable {
    /// `scope` parameters: ``ScopeHarness``.
    case scope
    /// `/v2/` request lines: ``RouteHarness``.
    case route
    /// htpasswd files: ``HtpasswdHarness``.
    case htpasswd
    /// Client and external-issuer JWTs: ``TokenHarness``.
    case token
    /// The YAML configuration file: ``ConfigurationHarness``.
    case configuration
    /// Signature payloads, attachments, referrers indexes and bundles: ``SignatureHarness``.
    case signature

    /// Runs one input through the harness.
    /// - Throws: ``FuzzFinding`` when an invariant is broken.
    package func run(_ input: [UInt8]) throws(FuzzFinding) {
        switch self {
        case .scope: try ScopeHarness.run(input)
        case .route: try RouteHarness.run(input)
        case .htpasswd: try HtpasswdHarness.run(input)
        case .token: try TokenHarness.run(input)
        case .configuration: try ConfigurationHarness.run(input)
        case .signature: try SignatureHarness.run(input)
        }
    }
}
