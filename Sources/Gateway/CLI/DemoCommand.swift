import ArgumentParser
import Crypto
import Foundation
import Logging
import Policy
import PortcullisConfiguration

/// `portcullis demo`: a registry and Portcullis in front of it, with nothing but the toolchain
/// and the setup script's packages.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start Debian's docker-registry and Portcullis in front of it, and print commands to try.")

    @Option(name: .long, help: "Directory for keys, configuration and registry storage (default: a new one under /tmp).")
    var directory: String?

    @Option(name: .long, help: "Port for Portcullis (0 picks a free one).")
    var port: Int = 5000

    @Option(name: .long, help: "The registry executable.")
    var registry: String = "/usr/bin/docker-registry"

    func run() async throws {
        guard FileManager.default.isExecutableFile(atPath: registry) else {
            throw ValidationError("\(registry) not found: run scripts/setup (it installs Debian's docker-registry)")
        }
        let base = directory ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("portcullis-demo-\(UUID().uuidString.prefix(8))")
        let fileManager = FileManager.default
        try fileManager.createDirectory(atPath: base, withIntermediateDirectories: true)
        func path(_ name: String) -> String { (base as NSString).appendingPathComponent(name) }

        // Keys and users.
        if !fileManager.fileExists(atPath: path("keys/token.key")) {
            try fileManager.createDirectory(atPath: path("keys"), withIntermediateDirectories: true)
            let keys = try KeyGenerator.generate(.es256, now: Date())
            try Data(keys.privateKeyPEM.utf8).write(to: URL(fileURLWithPath: path("keys/token.key")))
            try Data(keys.certificatePEM.utf8).write(to: URL(fileURLWithPath: path("keys/token.crt")))
        }
        let password = Self.randomWord()
        let adminPassword = Self.randomWord()
        let salt = { (0..<16).map { _ in UInt8.random(in: 0...255) } }
        let htpasswd = """
            alice:\(try Bcrypt.hash(password: password, cost: 10, salt: salt()))
            admin:\(try Bcrypt.hash(password: adminPassword, cost: 10, salt: salt()))

            """
        try Data(htpasswd.utf8).write(to: URL(fileURLWithPath: path("users.htpasswd")))

        // Configuration.
        let gatewayPort = try FreePort.available(preferring: port)
        let registryPort = try FreePort.available(preferring: 0)
        let publicURL = "http://127.0.0.1:\(gatewayPort)"
        let configurationText = """
            listen: 127.0.0.1:\(gatewayPort)
            public_url: \(publicURL)
            upstream:
              url: http://127.0.0.1:\(registryPort)
              registry_version: "2.8"
              key_hint: x5c
              service: registry
              issuer: portcullis
            token:
              service: portcullis
              issuer: portcullis
              key: keys/token.key
              certificate: keys/token.crt
              lifetime: 300
            users:
              htpasswd: users.htpasswd
            rules:
              - {account: admin, name: "**", actions: ["*"]}
              - {account: admin, type: registry, name: catalog, actions: ["*"]}
              - {account: "*", name: "${account}/**", actions: [pull, push, delete]}
              - {account: anonymous, name: "public/**", actions: [pull]}
            ui:
              enabled: true

            """
        try Data(configurationText.utf8).write(to: URL(fileURLWithPath: path("portcullis.yaml")))
        let state = try GatewayState.load(try ConfigurationLoader.load(path: path("portcullis.yaml")))
        let wiring = try RegistryConfigCommand.write(state: state, directory: path("registry"))
        let registryConfiguration = """
            version: 0.1
            log:
              level: info
            storage:
              filesystem:
                rootdirectory: \(path("registry/data"))
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(registryPort)
              secret: \(Self.randomWord())\(Self.randomWord())
            \(wiring.block)
            """
        try Data(registryConfiguration.utf8).write(to: URL(fileURLWithPath: path("registry/config.yml")))
        try DemoImage.write(to: path("image"))

        // Processes.
        let registryLog = path("registry/registry.log")
        fileManager.createFile(atPath: registryLog, contents: nil)
        let registryProcess = Process()
        registryProcess.executableURL = URL(fileURLWithPath: registry)
        registryProcess.arguments = ["serve", path("registry/config.yml")]
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: registryLog))
        registryProcess.standardOutput = logHandle
        registryProcess.standardError = logHandle
        try registryProcess.run()
        defer {
            if registryProcess.isRunning {
                kill(registryProcess.processIdentifier, SIGTERM)
                registryProcess.waitUntilExit()
            }
        }

        GatewayRunner.bootstrapLogging(level: "info", format: "logfmt", audit: "stderr")
        let logger = Logger(label: "portcullis")
        let image = path("image")
        let instructions = """

            Portcullis demo
              Portcullis   \(publicURL)  (config \(path("portcullis.yaml")))
              browser      \(publicURL)/ui/  (log in as alice)
              registry     http://127.0.0.1:\(registryPort)  (pid \(registryProcess.processIdentifier), log \(registryLog))
              users        alice / \(password)    admin / \(adminPassword)
              files        \(base)  (kept when the demo stops)

            Try:
              skopeo copy --dest-tls-verify=false --dest-creds alice:\(password) oci:\(image):v1 docker://127.0.0.1:\(gatewayPort)/alice/app:v1
              skopeo inspect --tls-verify=false --creds alice:\(password) docker://127.0.0.1:\(gatewayPort)/alice/app:v1
              skopeo list-tags --tls-verify=false --creds alice:\(password) docker://127.0.0.1:\(gatewayPort)/alice/app
              curl -u alice:\(password) \(publicURL)/v2/alice/app/tags/list
              TOKEN=$(curl -s -u alice:\(password) '\(publicURL)/token?service=portcullis&scope=repository:alice/app:pull,push,delete' | sed -E 's/.*"token":"([^"]+)".*/\\1/')
              DIGEST=$(curl -sI -H "Authorization: Bearer $TOKEN" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \(publicURL)/v2/alice/app/manifests/v1 | tr -d '\\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
              curl -X DELETE -H "Authorization: Bearer $TOKEN" \(publicURL)/v2/alice/app/manifests/$DIGEST
              curl -u admin:\(adminPassword) \(publicURL)/v2/_catalog

            Ctrl-C stops Portcullis and the registry.

            """
        try await GatewayRunner.run(state: state, logger: logger) { _ in
            FileHandle.standardOutput.write(Data((instructions + "\n").utf8))
        }
        print("demo stopped; files kept in \(base)")
    }

    static func randomWord() -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyz23456789")
        return String((0..<12).map { _ in alphabet.randomElement()! })
    }
}
