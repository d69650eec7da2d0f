import Foundation
import LDAPDirectory
import Policy
import PortcullisConfiguration

/// The `users` section: who may log in, from the htpasswd and robots files, an LDAP directory
/// and OIDC issuers.
extension GatewayState {
    /// The credentials `users` names (`htpasswd`, then `robots`, `ldap` and `oidc`) and the OIDC
    /// issuers by `iss`; what cannot be read is left out, with a problem. `robots`, when given,
    /// are the postgres state store's.
    static func users(
        _ configuration: GatewayConfiguration, robots: [RobotCredential]? = nil, _ problems: inout StateProblems
    ) -> (credentials: CredentialStore, workloadIssuers: [String: WorkloadIssuer]) {
        var credentials = CredentialStore()
        if let path = configuration.htpasswd, let text = problems.read(path, "users.htpasswd") {
            do {
                credentials.htpasswd = try HtpasswdFile(contents: text)
            } catch let error as PolicyError {
                problems.problem("users.htpasswd", "\(path): \(error.message)")
            } catch {
                problems.problem("users.htpasswd", "\(error)")
            }
        }

        if let robots {
            credentials = CredentialStore(htpasswd: credentials.htpasswd, robots: robots)
            if let clash = credentials.robots.keys.first(where: { credentials.htpasswd?.entries[$0] != nil }) {
                problems.problem("state", "robot \"\(clash)\" in the state store has the same name as an htpasswd user")
            }
        } else if let path = configuration.robots, FileManager.default.fileExists(atPath: path), let text = problems.read(path, "users.robots") {
            do {
                credentials = CredentialStore(htpasswd: credentials.htpasswd, robots: try RobotFile(json: Array(text.utf8)).robots)
                if let clash = credentials.robots.keys.first(where: { credentials.htpasswd?.entries[$0] != nil }) {
                    problems.problem("users.robots", "robot \"\(clash)\" has the same name as an htpasswd user")
                }
            } catch let error as PolicyError {
                problems.problem("users.robots", "\(path): \(error.message)")
            } catch {
                problems.problem("users.robots", "\(error)")
            }
        }

        if let ldap = configuration.ldap, let settings = ldapSettings(ldap, &problems) {
            credentials.directory = LDAPDirectory(settings: settings)
            credentials.directoryLogins = DirectoryLoginCache(
                lifetime: Double(ldap.cacheLifetime), accountRetention: Double(ldap.cacheLifetime + configuration.token.lifetime))
        }

        let workloadIssuers = workloadIssuers(configuration.oidc, &problems)
        if !workloadIssuers.isEmpty {
            credentials.workloadLogins = DirectoryLoginCache(lifetime: 60, accountRetention: Double(configuration.token.lifetime + 60))
        }
        return (credentials, workloadIssuers)
    }

    /// `users.ldap` as the directory's settings, its search password read; `nil` when the
    /// password file cannot be read.
    static func ldapSettings(_ ldap: LDAPConfiguration, _ problems: inout StateProblems) -> LDAPSettings? {
        var lookup: LDAPSettings.UserLookup?
        switch ldap.userLookup {
        case .template(let template):
            lookup = .template(template)
        case .search(let base, let filter, let bindDN, let passwordFile):
            if let password = problems.read(passwordFile, "users.ldap.search.bind_password_file") {
                let trimmed = password.trimmingCharacters(in: .newlines)
                if trimmed.isEmpty { problems.problem("users.ldap.search.bind_password_file", "\(passwordFile) is empty") }
                lookup = .search(base: base, filter: filter, bindDN: bindDN, bindPassword: trimmed)
            }
        }
        let groups: LDAPSettings.GroupLookup? = switch ldap.groups {
        case .none: nil
        case .search(let base, let filter, let attribute, let label): .search(base: base, filter: filter, attribute: attribute, label: label)
        case .memberOf(let label): .memberOf(label: label)
        }
        guard let lookup else { return nil }
        return LDAPSettings(
            url: ldap.url, startTLS: ldap.startTLS, caFile: ldap.ca, userLookup: lookup, groupLookup: groups,
            accountAttribute: ldap.accountAttribute, timeout: ldap.timeout)
    }

    /// `users.oidc`: each issuer's policy and key source by `iss`, a `jwks` file's keys read now.
    static func workloadIssuers(_ issuers: [OIDCConfiguration], _ problems: inout StateProblems) -> [String: WorkloadIssuer] {
        var workloadIssuers: [String: WorkloadIssuer] = [:]
        for (index, oidc) in issuers.enumerated() {
            let keyPath = "users.oidc[\(index)]"
            var source = WorkloadIssuer.KeySource.discovery
            var fixedKeys: [TrustedKey] = []
            switch oidc.keys {
            case .discovery:
                source = .discovery
            case .url(let url):
                source = .url(url)
            case .file(let path):
                source = .fixed
                if let text = problems.read(path, "\(keyPath).jwks") {
                    do {
                        fixedKeys = try PublicKeyMaterial.parseJSONWebKeySet(Array(text.utf8)).map { kid, key in
                            TrustedKey(publicKey: key, keyIDs: kid.map { [$0] } ?? [])
                        }
                        if fixedKeys.isEmpty { problems.problem("\(keyPath).jwks", "\(path) holds no key") }
                    } catch let error as PolicyError {
                        problems.problem("\(keyPath).jwks", "\(path): \(error.message)")
                    } catch {
                        problems.problem("\(keyPath).jwks", "\(path): \(error)")
                    }
                }
            }
            let policy = OIDCIssuer(
                issuer: oidc.issuer, audiences: Set(oidc.audiences), account: oidc.account, labels: oidc.labels, required: oidc.require,
                leeway: Double(oidc.leeway))
            workloadIssuers[oidc.issuer] = WorkloadIssuer(policy: policy, source: source, fixedKeys: fixedKeys, username: oidc.username)
        }
        return workloadIssuers
    }
}
