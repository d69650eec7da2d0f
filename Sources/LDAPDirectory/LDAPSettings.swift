/// How Portcullis finds and verifies accounts in an LDAP directory (`users.ldap`).
public struct LDAPSettings: Sendable, Equatable {
    /// How a login name becomes the DN that binds.
    public enum UserLookup: Sendable, Equatable {
        /// The DN is a template with `${username}` (escaped as a DN attribute value, RFC 4514).
        case template(String)
        /// A search, bound as a service account: `filter` has `${username}` (escaped per RFC 4515);
        /// exactly one entry must match.
        case search(base: String, filter: String, bindDN: String, bindPassword: String)
    }

    /// Where an account's groups come from; each group's name becomes a value of `label`.
    public enum GroupLookup: Sendable, Equatable {
        /// A search under `base` with `filter` (`${dn}` and `${username}`, escaped per RFC 4515),
        /// taking `attribute` of each entry found.
        case search(base: String, filter: String, attribute: String, label: String)
        /// The account entry's `memberOf` values (DNs), each taken by its first RDN's value.
        case memberOf(label: String)
    }

    /// `ldap://host:port` or `ldaps://host:port`.
    public var url: String
    /// Whether to upgrade an `ldap://` connection with StartTLS before binding.
    public var startTLS: Bool
    /// PEM file of the CA that signed the directory's certificate (TLS and StartTLS).
    public var caFile: String?
    public var userLookup: UserLookup
    public var groupLookup: GroupLookup?
    /// The account entry's attribute whose value becomes the account name; the login name if `nil`.
    public var accountAttribute: String?
    /// Seconds for connecting and for each operation.
    public var timeout: Int

    public init(
        url: String, startTLS: Bool = false, caFile: String? = nil, userLookup: UserLookup, groupLookup: GroupLookup? = nil,
        accountAttribute: String? = nil, timeout: Int = 5
    ) {
        self.url = url
        self.startTLS = startTLS
        self.caFile = caFile
        self.userLookup = userLookup
        self.groupLookup = groupLookup
        self.accountAttribute = accountAttribute
        self.timeout = timeout
    }
}
