/// A directory that verifies account passwords elsewhere (an LDAP server), and tells which
/// labels (groups) the account has.
///
/// Implementations do blocking I/O: callers never call ``authenticate(account:password:)`` on an
/// event loop, and consult a ``DirectoryLoginCache`` first.
public protocol PasswordDirectory: Sendable {
    /// Verifies `password` for the login name `account`.
    /// - Returns: the identity (kind ``Identity/Kind/ldap``) with the account name and labels the
    ///   directory gives it.
    /// - Throws: ``PolicyError`` with ``PolicyError/Code/unknownAccount`` or
    ///   ``PolicyError/Code/invalidCredentials`` for a refusal, and
    ///   ``PolicyError/Code/directoryUnavailable`` when the directory could not decide.
    func authenticate(account: String, password: String) throws -> Identity
}
