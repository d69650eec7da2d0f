import Yams

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

extension ConfigurationLoader.Reader {
    /// `users.ldap`: `nil` when it is not a mapping, lacks `url`, or names no way to find an
    /// account's DN (`bind_dn` or `search`).
    mutating func readLDAP(_ node: Node, _ keyPath: String) -> LDAPConfiguration? {
        guard
            let section = mapping(
                node, keyPath,
                allowed: ["url", "start_tls", "ca", "bind_dn", "search", "groups", "account_attribute", "cache_lifetime", "timeout"])
        else { return nil }
        let url = string(section["url"], "\(keyPath).url", required: true)
        if let url, !(url.hasPrefix("ldap://") || url.hasPrefix("ldaps://")) || url.contains(" ") {
            problem("\(keyPath).url", "must be one ldap:// or ldaps:// URL (got \"\(url)\")")
        }
        var startTLS = false
        if let flag = section["start_tls"] {
            if let value = flag.bool { startTLS = value } else { problem("\(keyPath).start_tls", "must be true or false") }
        }
        if startTLS, let url, url.hasPrefix("ldaps://") {
            problem("\(keyPath).start_tls", "applies to ldap:// only (ldaps:// is TLS from the start)")
        }
        let ca = path(section["ca"], "\(keyPath).ca")
        var lookup: LDAPConfiguration.UserLookup?
        let bindDN = string(section["bind_dn"], "\(keyPath).bind_dn")
        if let bindDN {
            if !bindDN.contains("${username}") {
                problem("\(keyPath).bind_dn", "must contain ${username} (got \"\(bindDN)\")")
            }
            lookup = .template(bindDN)
        }
        if let search = mapping(section["search"], "\(keyPath).search", allowed: ["base", "filter", "bind_dn", "bind_password_file"]) {
            let base = string(search["base"], "\(keyPath).search.base", required: true)
            let filter = string(search["filter"], "\(keyPath).search.filter", required: true)
            let serviceDN = string(search["bind_dn"], "\(keyPath).search.bind_dn", required: true)
            let passwordFile = path(search["bind_password_file"], "\(keyPath).search.bind_password_file", required: true)
            if let filter, !filter.contains("${username}") || !filter.hasPrefix("(") {
                problem("\(keyPath).search.filter", "must be a parenthesised LDAP filter with ${username} (got \"\(filter)\")")
            }
            if bindDN != nil { problem("\(keyPath).search", "bind_dn and search are alternatives: give one") }
            if let base, let filter, let serviceDN, let passwordFile {
                lookup = .search(base: base, filter: filter, bindDN: serviceDN, bindPasswordFile: passwordFile)
            }
        } else if bindDN == nil && section["search"] == nil {
            problem(keyPath, "needs bind_dn (a DN template with ${username}) or search (base, filter, bind_dn, bind_password_file)")
        }
        var groups: LDAPConfiguration.Groups?
        if let section = mapping(section["groups"], "\(keyPath).groups", allowed: ["base", "filter", "attribute", "label", "member_of"]) {
            let label = string(section["label"], "\(keyPath).groups.label") ?? "group"
            var memberOf = false
            if let flag = section["member_of"] {
                if let value = flag.bool { memberOf = value } else { problem("\(keyPath).groups.member_of", "must be true or false") }
            }
            if memberOf {
                if section["base"] != nil || section["filter"] != nil {
                    problem("\(keyPath).groups", "member_of: true takes the groups from the account entry; base and filter do not apply")
                }
                groups = .memberOf(label: label)
            } else {
                let base = string(section["base"], "\(keyPath).groups.base", required: true)
                let filter = string(section["filter"], "\(keyPath).groups.filter", required: true)
                let attribute = string(section["attribute"], "\(keyPath).groups.attribute") ?? "cn"
                if let filter, !filter.hasPrefix("(") {
                    problem("\(keyPath).groups.filter", "must be a parenthesised LDAP filter, e.g. (member=${dn}) (got \"\(filter)\")")
                }
                if let base, let filter { groups = .search(base: base, filter: filter, attribute: attribute, label: label) }
            }
        }
        let accountAttribute = string(section["account_attribute"], "\(keyPath).account_attribute")
        let cacheLifetime = integer(section["cache_lifetime"], "\(keyPath).cache_lifetime", range: 1...3600) ?? 60
        let timeout = integer(section["timeout"], "\(keyPath).timeout", range: 1...60) ?? 5
        guard let url, let lookup else { return nil }
        return LDAPConfiguration(
            url: url, startTLS: startTLS, ca: ca, userLookup: lookup, groups: groups, accountAttribute: accountAttribute,
            cacheLifetime: cacheLifetime, timeout: timeout)
    }
}
