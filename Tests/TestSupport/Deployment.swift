import Foundation

#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A real Debian `docker-registry` (distribution 2.8.2) with Portcullis in front of it, each
/// on a free loopback port, wired with Portcullis's own CLI (`keys generate`,
/// `registry-config`).
public final class Deployment: Sendable {
    /// Everything the deployment writes: keys, configs, logs, registry storage.
    public let directory: String
    /// The registry's port.
    public let registryPort: Int
    /// Portcullis's port.
    public let gatewayPort: Int
    /// Passwords by account.
    public let passwords: [String: String]
    private let registryProcess: Mutex<ServiceProcess?>
    /// Replicas started by ``startReplica()``.
    private let replicas = Mutex<[ServiceProcess]>([])
    /// The Portcullis process.
    public let gateway: ServiceProcess

    /// `http` or `https`.
    public let scheme: String
    /// Whether Portcullis expects a PROXY protocol header on every connection.
    public let proxyProtocol: Bool
    /// `http://127.0.0.1:PORT` (or https) of Portcullis.
    public var url: String { "\(scheme)://127.0.0.1:\(gatewayPort)" }
    /// The audit stream's lines.
    public var auditLog: String { (try? String(contentsOfFile: directory + "/audit.log", encoding: .utf8)) ?? "" }
    /// `127.0.0.1:PORT` of Portcullis, for skopeo's `docker://` references.
    public var host: String { "127.0.0.1:\(gatewayPort)" }
    /// The registry's storage root (`…/docker/registry/v2` lives below it).
    public var storage: String { directory + "/registry/data/docker/registry/v2" }
    /// The registry's log.
    public var registryLog: String { (try? String(contentsOfFile: directory + "/registry/registry.log", encoding: .utf8)) ?? "" }

    /// Stops both processes and removes ``directory`` (blobs of up to a gigabyte live there)
    /// once the last test holding the deployment is done; `PORTCULLIS_KEEP_TEST_DIRECTORIES=1`
    /// keeps it for a post-mortem.
    deinit {
        stop()
        if ProcessInfo.processInfo.environment["PORTCULLIS_KEEP_TEST_DIRECTORIES"] != "1" {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Starts a registry and Portcullis.
    /// - Parameters:
    ///   - users: account → password, written with the real `htpasswd -B`.
    ///   - rules: the YAML of the `rules:` list (one `- {…}` per line).
    ///   - keyHint: `upstream.key_hint`.
    ///   - registryTrustsOtherKey: wire the registry with a different certificate than the one Portcullis signs with.
    ///   - registryConfiguration: top-level YAML added to the registry's config.yml (`middleware:`, say).
    ///   - readinessInterval: `readiness.interval`, seconds between Portcullis's checks of the registry.
    ///   - usersConfiguration: more keys of `users:` (`ldap: {…}`), on one line each, unindented.
    ///   - tokenGrant: `token.grant`.
    ///   - robotsFile: name `users.robots` (not with `state.store: postgres`).
    ///   - files: files written into the deployment's directory before anything reads the configuration (name → content).
    public static func start(
        users: [String: String], rules: String, keyHint: String = "x5c", registryTrustsOtherKey: Bool = false,
        extraConfiguration: String = "", tls: Bool = false, logFormat: String = "logfmt", registryConfiguration: String = "",
        readinessInterval: Int = 1, usersConfiguration: String = "", tokenGrant: String = "requested", robotsFile: Bool = true,
        files: [String: String] = [:]
    ) async throws -> Deployment {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-it-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory + "/registry", withIntermediateDirectories: true)
        for (name, content) in files {
            try Data(content.utf8).write(to: URL(fileURLWithPath: directory + "/" + name))
            chmod(directory + "/" + name, 0o600)
        }
        let binary = try portcullisBinary()
        _ = try await Command(binary, ["keys", "generate", "--out", directory + "/keys"]).runInBackground().checked()

        var htpasswd = ""
        for (account, password) in users.sorted(by: { $0.key < $1.key }) {
            htpasswd += try await Command("htpasswd", ["-nbB", account, password]).runInBackground().checked().standardOutput
                .trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
        }
        try Data(htpasswd.utf8).write(to: URL(fileURLWithPath: directory + "/users.htpasswd"))

        let registryPort = try freeLoopbackPort()
        var gatewayPort = try freeLoopbackPort()
        while gatewayPort == registryPort { gatewayPort = try freeLoopbackPort() }
        var tlsSection = ""
        if tls {
            try TestCertificateAuthority.issue(into: directory + "/tls")
            tlsSection = "tls:\n  certificate: tls/server.crt\n  key: tls/server.key"
        }
        let configuration = """
            listen: 127.0.0.1:\(gatewayPort)
            public_url: \(tls ? "https" : "http")://127.0.0.1:\(gatewayPort)
            \(tlsSection)
            upstream:
              url: http://127.0.0.1:\(registryPort)
              registry_version: "2.8"
              key_hint: \(keyHint)
              service: registry
              issuer: portcullis
            token:
              service: portcullis
              issuer: portcullis
              key: keys/token.key
              certificate: keys/token.crt
              lifetime: 300
              grant: \(tokenGrant)
            users:
              htpasswd: users.htpasswd
            \(robotsFile ? "  robots: robots.json" : "")
            \(usersConfiguration.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            readiness:
              interval: \(readinessInterval)
            \(extraConfiguration)
            rules:
            \(rules)
            log:
              level: info
              format: \(logFormat)
              audit: audit.log

            """
        let configurationPath = directory + "/portcullis.yaml"
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: configurationPath))
        let wiring = try Command(binary, ["registry-config", "--config", configurationPath, "--out", directory + "/registry/trust"])
            .run().checked()
        _ = try await Command(binary, ["keys", "generate", "--out", directory + "/otherkeys"]).runInBackground().checked()
        try Data(wiring.standardOutput.utf8).write(to: URL(fileURLWithPath: directory + "/registry/auth-block.yml"))
        try Data(registryConfiguration.utf8).write(to: URL(fileURLWithPath: directory + "/registry/extra.yml"))
        try writeRegistryConfiguration(directory: directory, registryPort: registryPort, trustingOtherKey: registryTrustsOtherKey)

        let registry = try startRegistry(directory: directory)
        try await waitUntilAnswering("http://127.0.0.1:\(registryPort)/v2/")
        // Portcullis runs as the unprivileged user of the deploy/k8s manifests (GatewayUser).
        try GatewayUser.handOver(directory)
        let gateway = try ServiceProcess.gateway(binary, ["serve", "--config", configurationPath], logPath: directory + "/portcullis.log")
        let proxyProtocol = extraConfiguration.contains("listen_proxy_protocol: true")
        let haproxy = proxyProtocol ? ["--haproxy-protocol"] : []
        if tls {
            try await waitUntilAnswering("https://127.0.0.1:\(gatewayPort)/healthz", curlOptions: ["--cacert", directory + "/tls/ca.crt"] + haproxy)
        } else {
            try await waitUntilAnswering("http://127.0.0.1:\(gatewayPort)/healthz", curlOptions: haproxy)
        }
        return Deployment(
            directory: directory, registryPort: registryPort, gatewayPort: gatewayPort, passwords: users, registry: registry,
            gateway: gateway, scheme: tls ? "https" : "http", proxyProtocol: proxyProtocol)
    }

    /// Writes the registry's config.yml from the `auth:` block `registry-config` printed and the
    /// deployment's extra registry YAML, optionally pointing its rootcertbundle at a certificate
    /// Portcullis does not sign with.
    private static func writeRegistryConfiguration(directory: String, registryPort: Int, trustingOtherKey: Bool) throws {
        let extra = try String(contentsOfFile: directory + "/registry/extra.yml", encoding: .utf8)
        var authBlock = try String(contentsOfFile: directory + "/registry/auth-block.yml", encoding: .utf8)
        if trustingOtherKey {
            authBlock = authBlock.replacingOccurrences(
                of: directory + "/registry/trust/rootcertbundle.pem", with: directory + "/otherkeys/token.crt")
        }
        let registryConfiguration = """
            version: 0.1
            log:
              level: info
            storage:
              filesystem:
                rootdirectory: \(directory)/registry/data
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(registryPort)
              secret: integration-test-secret
            \(authBlock)
            \(extra)
            """
        try Data(registryConfiguration.utf8).write(to: URL(fileURLWithPath: directory + "/registry/config.yml"))
    }

    /// Restarts the registry trusting Portcullis's certificate, or another one.
    public func rewireRegistry(trustingOtherKey: Bool) async throws {
        stopRegistry()
        try Self.writeRegistryConfiguration(directory: directory, registryPort: registryPort, trustingOtherKey: trustingOtherKey)
        try await restartRegistry()
    }

    /// Replaces the htpasswd file with these accounts (Portcullis reloads it on its own).
    public func writeUsers(_ users: [String: String]) throws {
        var htpasswd = ""
        for (account, password) in users.sorted(by: { $0.key < $1.key }) {
            htpasswd += try Command("htpasswd", ["-nbB", account, password]).run().checked().standardOutput
                .trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
        }
        let temporary = directory + "/users.htpasswd.new"
        try Data(htpasswd.utf8).write(to: URL(fileURLWithPath: temporary))
        try GatewayUser.handOver(temporary)
        guard rename(temporary, directory + "/users.htpasswd") == 0 else {
            throw HarnessError("cannot replace users.htpasswd: errno \(errno)")
        }
    }

    /// The configuration file Portcullis runs with.
    public var configurationPath: String { directory + "/portcullis.yaml" }

    private init(
        directory: String, registryPort: Int, gatewayPort: Int, passwords: [String: String], registry: ServiceProcess, gateway: ServiceProcess,
        scheme: String, proxyProtocol: Bool
    ) {
        self.scheme = scheme
        self.proxyProtocol = proxyProtocol
        self.directory = directory
        self.registryPort = registryPort
        self.gatewayPort = gatewayPort
        self.passwords = passwords
        self.registryProcess = Mutex(registry)
        self.gateway = gateway
    }

    private static func startRegistry(directory: String) throws -> ServiceProcess {
        guard let registry = which("docker-registry") ?? (FileManager.default.isExecutableFile(atPath: "/usr/bin/docker-registry") ? "/usr/bin/docker-registry" : nil) else {
            throw HarnessError("docker-registry is not installed: run scripts/setup")
        }
        return try ServiceProcess(
            registry, ["serve", directory + "/registry/config.yml"], logPath: directory + "/registry/registry.log")
    }

    /// Stops the registry (Portcullis keeps running).
    public func stopRegistry() {
        registryProcess.withLock { $0 }?.stop()
    }

    /// The running registry's process id (`nil` once stopped), for tests that signal it
    /// (SIGSTOP/SIGCONT to make it hang, SIGKILL to make it die mid-request).
    public var registryPID: Int32? {
        registryProcess.withLock { $0 }.flatMap { $0.isRunning ? $0.pid : nil }
    }

    /// Kills the registry with SIGKILL (no graceful shutdown, connections cut as they stand) and
    /// waits until it has gone; ``restartRegistry()`` brings it back.
    public func killRegistry() {
        guard let registry = registryProcess.withLock({ $0 }) else { return }
        if registry.isRunning { kill(registry.pid, SIGKILL) }
        registry.stop()
    }

    /// Starts the registry again with the same configuration and port.
    public func restartRegistry() async throws {
        let registry = try Self.startRegistry(directory: directory)
        registryProcess.withLock { $0 = registry }
        try await waitUntilAnswering("http://127.0.0.1:\(registryPort)/v2/")
    }

    /// Starts another Portcullis with this one's configuration (keys, users, rules, `state:`) on
    /// a port of its own, as a second replica behind one load balancer.
    /// - Returns: its port and process.
    public func startReplica() async throws -> (port: Int, process: ServiceProcess) {
        var port = try freeLoopbackPort()
        while port == gatewayPort || port == registryPort { port = try freeLoopbackPort() }
        let index = replicas.withLock { $0.count } + 2
        let configuration = try String(contentsOfFile: configurationPath, encoding: .utf8)
            .replacingOccurrences(of: "127.0.0.1:\(gatewayPort)", with: "127.0.0.1:\(port)")
            .replacingOccurrences(of: "audit: audit.log", with: "audit: audit-\(index).log")
        let path = directory + "/portcullis-\(index).yaml"
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: path))
        try GatewayUser.handOver(directory)
        let process = try ServiceProcess.gateway(try portcullisBinary(), ["serve", "--config", path], logPath: directory + "/portcullis-\(index).log")
        replicas.withLock { $0.append(process) }
        try await waitUntilAnswering("\(scheme)://127.0.0.1:\(port)/healthz", curlOptions: scheme == "https" ? ["--cacert", directory + "/tls/ca.crt"] : [])
        return (port, process)
    }

    /// Stops every process.
    public func stop() {
        for replica in replicas.withLock({ $0 }) { replica.stop() }
        gateway.stop()
        stopRegistry()
    }

    /// `user:password` for skopeo's `--creds`.
    public func credentials(_ account: String) -> String { "\(account):\(passwords[account] ?? "")" }

    /// Pushes image `tag` of the OCI layout at `layout` to `reference` (`repository:tag`) through
    /// Portcullis with skopeo, digests preserved, logging in with `credentials` (`user:password`).
    public func push(_ layout: String, tag: String = "v1", credentials: String, to reference: String) async throws -> CommandResult {
        try await skopeo(["copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", credentials, "oci:\(layout):\(tag)", "docker://\(host)/\(reference)"])
    }

    /// Runs skopeo with a timeout.
    public func skopeo(_ arguments: [String]) async throws -> CommandResult {
        try await Command("skopeo", arguments, timeout: .seconds(120)).runInBackground()
    }

    /// Runs curl against Portcullis; `path` is appended to ``url``.
    public func curl(_ arguments: [String], path: String) async throws -> CommandResult {
        let tls = (scheme == "https" ? ["--cacert", directory + "/tls/ca.crt"] : []) + (proxyProtocol ? ["--haproxy-protocol"] : [])
        return try await Command("curl", ["-s", "--max-time", "120"] + tls + arguments + [url + path], timeout: .seconds(150)).runInBackground()
    }
}

/// The `portcullis` executable under test: `$PORTCULLIS_BIN`, or the debug build next to the package.
public func portcullisBinary() throws -> String {
    if let path = ProcessInfo.processInfo.environment["PORTCULLIS_BIN"], FileManager.default.isExecutableFile(atPath: path) {
        return path
    }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    for candidate in [".build/debug/portcullis", ".build/x86_64-unknown-linux-gnu/debug/portcullis", ".build/aarch64-unknown-linux-gnu/debug/portcullis"] {
        let path = root.appendingPathComponent(candidate).path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw HarnessError("portcullis binary not found: set PORTCULLIS_BIN or run swift build first")
}
