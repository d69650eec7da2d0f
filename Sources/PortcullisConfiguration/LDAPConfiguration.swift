/// `users.ldap`: accounts verified by binding to an LDAP directory, groups as labels.
package struct LDAPConfiguration: Sendable, Equatable {
    /// How a login name becomes the DN that binds.
    package enum UserLookup: Sendable, Equatable {
        /// `bind_dn` with `${username}`.
        case template(String)
        /// `search`: a service account finds the one entry `filter` (with `${username}`) matches.
        case search(base: String, filter: String, bindDN: String, bindPasswordFile: String)
    }

    /// `groups`: where an account's groups come from.
    package enum Groups: Sendable, Equatable {
        /// A search under `base` with `filter` (`${dn}`, `${username}`), taking `attribute`.
        case search(base: String, filter: String, attribute: String, label: String)
        /// The account entry's `memberOf` values, each by its first RDN's value.
        case memberOf(label: String)
    }

    /// `ldap://host:port` or `ldaps://host:port`.
    package var url: String
    package var startTLS = false
    /// PEM file of the CA for TLS and StartTLS.
    package var ca: String?
    package var userLookup: UserLookup
    package var groups: Groups?
    /// The entry attribute that becomes the account name (the login name when absent).
    package var accountAttribute: String?
    /// Seconds a successful login is remembered.
    package var cacheLifetime = 60
    /// Seconds for connecting and for each LDAP operation.
    package var timeout = 5
}
