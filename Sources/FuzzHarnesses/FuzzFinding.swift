/// An invariant a fuzz harness found broken: the input exposes a bug.
///
/// The libFuzzer executables turn it into a crash so the input is saved; the regression tests
/// fail with it.
package struct FuzzFinding: Error, CustomStringConvertible {
    /// The harness that found it.
    package var harness: String
    /// The invariant that does not hold, with the values involved.
    package var invariant: String

    package init(_ harness: String, _ invariant: String) {
        self.harness = harness
        self.invariant = invariant
    }

    package var description: String { "\(harness): \(invariant)" }
}
