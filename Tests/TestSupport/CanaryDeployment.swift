import Foundation
import Synchronization

/// Portcullis in front of two real docker-registry 2.8.2 processes on one storage directory
/// with one `http.secret` (as registry 2.8 and 3.x can share storage), standing in for a
/// registry 2-to-3 canary: `primary` trusts Portcullis's key by `kid`, `canary` trusts a key of
/// its own by `x5c`.
public final class CanaryDeployment: @unchecked Sendable {
    public let directory: String
    public let gatewayPort: Int
    public let ports: [String: Int]
    private let registries: Mutex<[String: ServiceProcess]>
    public let password = "alice-secret"

    public var host: String { "127.0.0.1:\(gatewayPort)" }
    public var url: String { "http://\(host)" }
    public var credentials: String { "alice:\(password)" }
    public var configurationPath: String { directory + "/portcullis.yaml" }

    /// The access log of the registry named `name` (`primary` or `canary`).
    public func registryLog(_ name: String) -> String {
        (try? String(contentsOfFile: directory + "/\(name)/registry.log", encoding: .utf8)) ?? ""
    }

    /// Starts both registries and Portcullis; `canaryRouting` is the canary's routing keys
    /// (`repositories: [...]`, `weight: N`) in flow style.
    public static func start(canaryRouting: String) async throws -> CanaryDeployment {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-canary-\(UUID().uuidString.prefix(8))").path
        let binary = try portcullisBinary()
        _ = try await Command(binary, ["keys", "generate", "--out", directory + "/keys"]).runInBackground().checked()
        // The canary has a signing key of its own (`key`/`certificate` on its upstreams entry).
        _ = try await Command(binary, ["keys", "generate", "--out", directory + "/canary-keys"]).runInBackground().checked()
        let htpasswd = try await Command("htpasswd", ["-nbB", "alice", "alice-secret"]).runInBackground().checked().standardOutput
        try Data(htpasswd.utf8).write(to: URL(fileURLWithPath: directory + "/users.htpasswd"))
        var ports: [String: Int] = [:]
        for name in ["primary", "canary", "gateway"] {
            var port = try freeLoopbackPort()
            while ports.values.contains(port) { port = try freeLoopbackPort() }
            ports[name] = port
        }
        let deployment = CanaryDeployment(directory: directory, ports: ports)
        try deployment.writeConfiguration(canaryRouting: canaryRouting)
        for name in ["primary", "canary"] {
            try FileManager.default.createDirectory(atPath: directory + "/\(name)", withIntermediateDirectories: true)
            let block = try await Command(
                binary, ["registry-config", "--config", deployment.configurationPath, "--upstream", name, "--out", directory + "/\(name)/trust"]
            ).runInBackground().checked().standardOutput
            let configuration = """
                version: 0.1
                log:
                  level: info
                storage:
                  filesystem:
                    rootdirectory: \(directory)/storage
                  delete:
                    enabled: true
                http:
                  addr: 127.0.0.1:\(ports[name]!)
                  secret: one-secret-for-both-registries
                \(block)
                """
            try Data(configuration.utf8).write(to: URL(fileURLWithPath: directory + "/\(name)/config.yml"))
            try await deployment.startRegistry(name)
        }
        try GatewayUser.handOver(directory)
        let gateway = try ServiceProcess.gateway(binary, ["serve", "--config", deployment.configurationPath], logPath: directory + "/portcullis.log")
        deployment.gatewayHolder.withLock { $0 = gateway }
        try await waitUntilAnswering("\(deployment.url)/healthz")
        return deployment
    }

    private let gatewayHolder = Mutex<ServiceProcess?>(nil)

    private init(directory: String, ports: [String: Int]) {
        self.directory = directory
        self.ports = ports
        self.gatewayPort = ports["gateway"]!
        self.registries = Mutex([:])
    }

    /// Writes portcullis.yaml with the canary's routing keys; a running Portcullis reloads it.
    public func writeConfiguration(canaryRouting: String) throws {
        let configuration = """
            listen: 127.0.0.1:\(gatewayPort)
            public_url: http://127.0.0.1:\(gatewayPort)
            upstreams:
              - {name: primary, url: "http://127.0.0.1:\(ports["primary"]!)", registry_version: "2.8", key_hint: kid, service: registry, issuer: portcullis, primary: true}
              - {name: canary, url: "http://127.0.0.1:\(ports["canary"]!)", registry_version: "2.8", key_hint: x5c, service: registry, issuer: portcullis, key: canary-keys/token.key, certificate: canary-keys/token.crt, \(canaryRouting)}
            token:
              service: portcullis
              issuer: portcullis
              key: keys/token.key
              certificate: keys/token.crt
            users:
              htpasswd: users.htpasswd
            readiness:
              interval: 1
            rules:
              - {account: alice, name: "**", actions: [pull, push, delete]}
            log:
              level: info
              audit: audit.log

            """
        let temporary = configurationPath + ".new"
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, configurationPath) == 0 else { throw HarnessError("cannot replace portcullis.yaml: errno \(errno)") }
    }

    /// Starts (or restarts) the registry `name`.
    public func startRegistry(_ name: String) async throws {
        guard let binary = which("docker-registry") ?? (FileManager.default.isExecutableFile(atPath: "/usr/bin/docker-registry") ? "/usr/bin/docker-registry" : nil) else {
            throw HarnessError("docker-registry is not installed: run scripts/setup")
        }
        let process = try ServiceProcess(binary, ["serve", directory + "/\(name)/config.yml"], logPath: directory + "/\(name)/registry.log")
        registries.withLock { $0[name] = process }
        try await waitUntilAnswering("http://127.0.0.1:\(ports[name]!)/v2/")
    }

    /// Kills the registry `name` with SIGKILL and waits until it has gone.
    public func killRegistry(_ name: String) {
        guard let process = registries.withLock({ $0[name] }) else { return }
        if process.isRunning { kill(process.pid, SIGKILL) }
        process.stop()
    }

    /// The running Portcullis.
    public var server: ServiceProcess? { gatewayHolder.withLock { $0 } }
    /// Portcullis's log.
    public var gatewayLog: String { server?.log ?? "" }

    /// Stops Portcullis and both registries, and removes the directory.
    public func stop() {
        server?.stop()
        for name in ["primary", "canary"] { killRegistry(name) }
    }

    deinit {
        stop()
        if ProcessInfo.processInfo.environment["PORTCULLIS_KEEP_TEST_DIRECTORIES"] != "1" {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Runs skopeo with a timeout.
    public func skopeo(_ arguments: [String]) async throws -> CommandResult {
        try await Command("skopeo", arguments, timeout: .seconds(120)).runInBackground()
    }

    /// Runs curl against Portcullis; `path` is appended to ``url``.
    public func curl(_ arguments: [String], path: String) async throws -> CommandResult {
        try await Command("curl", ["-s", "--max-time", "60"] + arguments + [url + path], timeout: .seconds(90)).runInBackground()
    }
}
