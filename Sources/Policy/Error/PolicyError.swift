/// The one error type of the `Policy` module.
///
/// A `PolicyError` carries a ``Code`` that callers switch over, a message written for the
/// operator who has to fix the input, and the source location that raised it. Two errors are
/// equal when their codes are equal, so tests can compare against a code without caring about
/// the exact wording.
public struct PolicyError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What went wrong, as a closed set that is safe to use as a metric label.
    public enum Code: String, Sendable, Equatable, CaseIterable {
        /// A scope string does not follow `type:name:actions`.
        case invalidScope
        /// A repository name breaks distribution's reference grammar.
        case invalidRepositoryName
        /// An action other than `pull`, `push`, `delete` or `*`.
        case invalidAction
        /// A `/v2/` request path that the registry would not route as-is.
        case invalidRoute
        /// An htpasswd file line that cannot be parsed.
        case malformedCredentialEntry
        /// A password hash kind that Portcullis does not verify (only bcrypt is accepted).
        case unsupportedHashKind
        /// No credential exists for the presented account.
        case unknownAccount
        /// The account exists but the secret does not match.
        case invalidCredentials
        /// The credential exists but has expired or been disabled.
        case credentialExpired
        /// A rule in the rule list is malformed.
        case invalidRule
        /// Key material could not be read or is of an unsupported kind.
        case invalidKey
        /// An image signature or its attachment is malformed (not: unsigned, or by another key).
        case invalidSignature
        /// The key cannot be announced in the form the pinned registry version expects.
        case unsupportedKeyForRegistry
        /// A token failed verification; ``PolicyError/message`` says why.
        case invalidToken
        /// A token could not be produced.
        case tokenMintingFailed
        /// The directory that verifies the credential (LDAP) could not be reached or answered
        /// with an error other than a refusal: the credential is neither accepted nor refused.
        case directoryUnavailable
    }

    /// What went wrong.
    public var code: Code
    /// The reason, written for the operator.
    public var message: String
    /// The error that caused this one, if any.
    public var underlying: (any Error)?
    /// The file that raised the error.
    public var file: String
    /// The line that raised the error.
    public var line: Int

    /// Creates an error.
    /// - Parameters:
    ///   - code: What went wrong.
    ///   - message: The reason, written for the operator.
    ///   - underlying: The error that caused this one.
    public init(
        _ code: Code,
        _ message: String,
        underlying: (any Error)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    public var description: String {
        if let underlying {
            return "\(code.rawValue): \(message) (\(underlying))"
        }
        return "\(code.rawValue): \(message)"
    }

    public static func == (lhs: PolicyError, rhs: PolicyError) -> Bool {
        lhs.code == rhs.code
    }
}
