import CLDAP

/// An LDAP operation that failed, with libldap's result code and the server's diagnostic.
public struct LDAPError: Error, Sendable, CustomStringConvertible {
    /// What Portcullis was doing.
    public var operation: String
    /// libldap's result code (negative for client-side errors such as `LDAP_SERVER_DOWN`).
    public var code: Int32
    /// The server's or the library's diagnostic message, if any.
    public var diagnostic: String?

    /// Whether the directory refused the credentials (as opposed to failing to answer).
    public var isInvalidCredentials: Bool { code == LDAP_INVALID_CREDENTIALS }

    public var description: String {
        let reason = String(cString: ldap_err2string(code))
        if let diagnostic, !diagnostic.isEmpty { return "\(operation): \(reason) (\(diagnostic))" }
        return "\(operation): \(reason)"
    }
}
