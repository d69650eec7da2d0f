/// Why a call Portcullis makes to the registry API on its own behalf (prune, tags of a digest)
/// failed.
///
/// Equality compares the code only; ``Code`` is a closed set safe for metric labels.
struct RegistryAPIError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What went wrong.
    enum Code: String, Sendable {
        /// No answer from the registry.
        case unreachable
        /// The repository or manifest does not exist (404).
        case notFound
        /// The registry refused the token Portcullis minted (401): a wiring problem.
        case tokenRejected
        /// The registry refuses deletes (405 `UNSUPPORTED`): `storage.delete.enabled` is false.
        case deleteDisabled
        /// Any other status.
        case unexpectedStatus
        /// A body that is not what the API promises.
        case malformedResponse
    }

    /// What went wrong.
    var code: Code
    /// The reason, written for the operator.
    var message: String
    /// The HTTP status, when the registry answered.
    var status: Int?
    /// The error that caused this one.
    var underlying: (any Error)?
    /// Where it was raised.
    var file: String
    var line: Int

    init(_ code: Code, _ message: String, status: Int? = nil, underlying: (any Error)? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.status = status
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    var description: String { message }

    static func == (lhs: RegistryAPIError, rhs: RegistryAPIError) -> Bool { lhs.code == rhs.code }
}
