import CLDAP
import Policy

/// Verifies logins by binding to an LDAP directory as the account (OpenLDAP's libldap), and
/// reads the account's groups as labels.
///
/// Every call opens its own connection and closes it: a login is a cache miss, not a hot-path
/// cost, and a connection shared across threads would need libldap's locking for nothing.
public struct LDAPDirectory: PasswordDirectory {
    public let settings: LDAPSettings

    public init(settings: LDAPSettings) {
        self.settings = settings
    }

    public func authenticate(account login: String, password: String) throws -> Identity {
        guard !login.isEmpty, login.utf8.count <= 256, !login.utf8.contains(0) else {
            throw PolicyError(.unknownAccount, "\"\(login)\" is not a directory login name")
        }
        guard !password.isEmpty else {
            throw PolicyError(.invalidCredentials, "empty password for directory account \"\(login)\"")
        }
        do {
            let connection = try LDAPConnection(settings: settings)
            let dn = try userDN(login: login, connection: connection)
            do {
                try connection.bind(dn: dn, password: password)
            } catch let error as LDAPError where error.isInvalidCredentials {
                throw PolicyError(.invalidCredentials, "directory refused the password of \"\(login)\" (\(dn))")
            }
            var wanted: [String] = []
            if let attribute = settings.accountAttribute { wanted.append(attribute) }
            if case .memberOf = settings.groupLookup { wanted.append("memberOf") }
            var entry = LDAPConnection.Entry(dn: dn, attributes: [:])
            if !wanted.isEmpty {
                guard let found = try connection.search(base: dn, scope: LDAP_SCOPE_BASE, filter: "(objectClass=*)", attributes: wanted, sizeLimit: 1).first else {
                    throw PolicyError(.unknownAccount, "directory entry \(dn) of \"\(login)\" cannot be read after binding")
                }
                entry = found
            }
            var account = login
            if let attribute = settings.accountAttribute {
                guard let value = entry.attributes[attribute]?.first, !value.isEmpty else {
                    throw PolicyError(.unknownAccount, "directory entry \(dn) has no \(attribute) for the account name")
                }
                account = value
            }
            var labels: [String: [String]] = [:]
            switch settings.groupLookup {
            case .none:
                break
            case .memberOf(let label):
                labels[label] = (entry.attributes["memberOf"] ?? []).compactMap(LDAPEscaping.firstRDNValue(of:))
            case .search(let base, let filter, let attribute, let label):
                let expanded = filter
                    .replacingAll("${dn}", with: LDAPEscaping.filterValue(dn))
                    .replacingAll("${username}", with: LDAPEscaping.filterValue(login))
                let groups = try connection.search(base: base, scope: LDAP_SCOPE_SUBTREE, filter: expanded, attributes: [attribute], sizeLimit: 1000)
                labels[label] = groups.flatMap { $0.attributes[attribute] ?? [] }
            }
            return Identity(account: account, kind: .ldap, labels: labels)
        } catch let error as LDAPError {
            throw PolicyError(.directoryUnavailable, "LDAP \(settings.url): \(error)")
        }
    }

    /// The DN that binds for `login`: the template filled in, or the one entry the search finds.
    private func userDN(login: String, connection: LDAPConnection) throws -> String {
        switch settings.userLookup {
        case .template(let template):
            guard let escaped = LDAPEscaping.dnValue(login) else {
                throw PolicyError(.unknownAccount, "\"\(login)\" cannot be put into a DN")
            }
            return template.replacingAll("${username}", with: escaped)
        case .search(let base, let filter, let bindDN, let bindPassword):
            try connection.bind(dn: bindDN, password: bindPassword)
            let expanded = filter.replacingAll("${username}", with: LDAPEscaping.filterValue(login))
            let entries: [LDAPConnection.Entry]
            do {
                entries = try connection.search(base: base, scope: LDAP_SCOPE_SUBTREE, filter: expanded, attributes: ["1.1"], sizeLimit: 2)
            } catch let error as LDAPError where error.code == LDAP_SIZELIMIT_EXCEEDED {
                throw PolicyError(.unknownAccount, "more than one directory entry matches \"\(login)\"")
            }
            guard entries.count == 1, let entry = entries.first else {
                throw PolicyError(
                    .unknownAccount, entries.isEmpty ? "no directory entry for \"\(login)\"" : "more than one directory entry matches \"\(login)\"")
            }
            return entry.dn
        }
    }
}

extension String {
    fileprivate func replacingAll(_ placeholder: String, with value: String) -> String {
        split(separator: placeholder, omittingEmptySubsequences: false).joined(separator: value)
    }
}
