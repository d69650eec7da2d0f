import Foundation
import Yams

extension ConfigurationLoader.Reader {
    /// The `users` section as read: where accounts log in from.
    struct Users {
        /// `htpasswd`: the htpasswd file, resolved.
        var htpasswd: String?
        /// `robots`: the robots file, resolved (it may not exist yet).
        var robots: String?
        /// `ldap`: the LDAP directory, when given and valid.
        var ldap: LDAPConfiguration?
        /// `oidc`: the OIDC issuers that were valid, in order.
        var oidc: [OIDCConfiguration] = []
    }

    /// `users` (optional): `ldap`, then `oidc`, `htpasswd` and `robots`, in that order.
    mutating func readUsers(_ node: Node?) -> Users {
        var users = Users()
        if let section = mapping(node, "users", allowed: ["htpasswd", "robots", "ldap", "oidc"]) {
            if let node = section["ldap"] { users.ldap = readLDAP(node, "users.ldap") }
            if let node = section["oidc"] { users.oidc = readOIDCIssuers(node, "users.oidc") }
            users.htpasswd = self.path(section["htpasswd"], "users.htpasswd")
            if let value = string(section["robots"], "users.robots") {
                let resolved = value.hasPrefix("/") ? value : URL(fileURLWithPath: base).appendingPathComponent(value).path
                let directory = URL(fileURLWithPath: resolved).deletingLastPathComponent().path
                var isDirectory: ObjCBool = false
                if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) || !isDirectory.boolValue {
                    problem("users.robots", "directory \(directory) does not exist")
                }
                users.robots = resolved
            }
        }
        return users
    }
}
