import Foundation

/// A real OpenLDAP `slapd` (Debian's package) on a loopback port, with a fixture directory under
/// `dc=example,dc=org`: people alice (groups platform and team-a), bob (team-b), carol
/// (disabled: nobody may bind as her), the service account `cn=reader`, and StartTLS with a
/// throw-away CA (`tls/ca.crt`).
public final class LDAPServer: @unchecked Sendable {
    public static let suffix = "dc=example,dc=org"
    public static let adminDN = "cn=admin,dc=example,dc=org"
    public static let adminPassword = "admin-secret"
    public static let readerDN = "cn=reader,dc=example,dc=org"
    public static let readerPassword = "reader-secret"
    /// Login name → password of the fixture people.
    public static let passwords = ["alice": "alice-ldap-pw", "bob": "bob-ldap-pw", "carol": "carol-ldap-pw"]

    public let directory: String
    public let port: Int
    private var process: ServiceProcess?

    public var url: String { "ldap://127.0.0.1:\(port)" }
    public var caPath: String { directory + "/tls/ca.crt" }
    public var log: String { process?.log ?? "" }
    public var isRunning: Bool { process?.isRunning ?? false }

    /// Writes the configuration and the fixture (loaded with `slapadd`), and starts slapd.
    public static func start(in directory: String) async throws -> LDAPServer {
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        try TestCertificateAuthority.issue(into: directory + "/tls")
        let configuration = """
            include /etc/ldap/schema/core.schema
            include /etc/ldap/schema/cosine.schema
            include /etc/ldap/schema/inetorgperson.schema
            pidfile \(directory)/slapd.pid
            argsfile \(directory)/slapd.args
            modulepath /usr/lib/ldap
            moduleload back_mdb
            TLSCACertificateFile \(directory)/tls/ca.crt
            TLSCertificateFile \(directory)/tls/server.crt
            TLSCertificateKeyFile \(directory)/tls/server.key
            database mdb
            suffix "\(suffix)"
            rootdn "\(adminDN)"
            rootpw \(adminPassword)
            directory \(directory)/data
            access to dn.exact="uid=carol,ou=people,\(suffix)" attrs=userPassword by * none
            access to attrs=userPassword by self write by anonymous auth by * none
            access to * by users read by * none

            """
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: directory + "/slapd.conf"))
        var fixture = """
            dn: \(suffix)
            objectClass: dcObject
            objectClass: organization
            dc: example
            o: Example

            dn: ou=people,\(suffix)
            objectClass: organizationalUnit
            ou: people

            dn: ou=groups,\(suffix)
            objectClass: organizationalUnit
            ou: groups

            dn: \(readerDN)
            objectClass: person
            cn: reader
            sn: reader
            userPassword: \(readerPassword)


            """
        for (name, password) in passwords.sorted(by: { $0.key < $1.key }) {
            fixture += """
                dn: uid=\(name),ou=people,\(suffix)
                objectClass: inetOrgPerson
                uid: \(name)
                cn: \(name)
                sn: \(name)
                mail: \(name)@example.org
                userPassword: \(password)


                """
        }
        for (group, members) in [("platform", ["alice"]), ("team-a", ["alice"]), ("team-b", ["bob"])] {
            fixture += "dn: cn=\(group),ou=groups,\(suffix)\nobjectClass: groupOfNames\ncn: \(group)\n"
            for member in members { fixture += "member: uid=\(member),ou=people,\(suffix)\n" }
            fixture += "\n"
        }
        try Data(fixture.utf8).write(to: URL(fileURLWithPath: directory + "/fixture.ldif"))
        _ = try await Command("/usr/sbin/slapadd", ["-f", directory + "/slapd.conf", "-l", directory + "/fixture.ldif"]).runInBackground().checked()
        let server = LDAPServer(directory: directory, port: try freeLoopbackPort())
        try await server.launch()
        return server
    }

    private init(directory: String, port: Int) {
        self.directory = directory
        self.port = port
    }

    deinit { stop() }

    private func launch() async throws {
        // -d keeps slapd in the foreground (so its PID is the one to stop) and logs connections.
        process = try ServiceProcess(
            "/usr/sbin/slapd", ["-f", directory + "/slapd.conf", "-h", "ldap://127.0.0.1:\(port)/", "-d", "256"],
            logPath: directory + "/slapd.log")
        for _ in 0..<100 {
            let probe = try await Command(
                "ldapwhoami", ["-x", "-H", url, "-D", Self.readerDN, "-w", Self.readerPassword], timeout: .seconds(5)
            ).runInBackground()
            if probe.status == 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError("slapd on port \(port) did not answer: \(log.suffix(2000))")
    }

    /// Stops slapd (by its PID).
    public func stop() {
        process?.stop()
    }

    /// Starts slapd again on the same port with the same data.
    public func restart() async throws {
        stop()
        try await launch()
    }

    /// Sets `name`'s password in the directory, as the directory's administrator would.
    public func setPassword(of name: String, to password: String) async throws {
        _ = try await Command(
            "ldappasswd", ["-x", "-H", url, "-D", Self.adminDN, "-w", Self.adminPassword, "-s", password, "uid=\(name),ou=people,\(Self.suffix)"]
        ).runInBackground().checked()
    }
}
