import ArgumentParser
import Foundation
import Policy

/// `portcullis registry-config --config FILE --out DIR`: what the registry needs to trust Portcullis.
struct RegistryConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry-config",
        abstract: "Write the registry's trust material and print its auth.token block.")

    @Option(name: .long, help: "The YAML configuration file.")
    var config: String

    @Option(name: .long, help: "The directory to write rootcertbundle.pem or jwks.json into.")
    var out: String

    @Option(name: .long, help: "With several upstreams: the one whose registry this is for (default: the primary).")
    var upstream: String?

    func run() throws {
        let state = try GatewayState.loadForCommand(path: config, exitStatus: 1)
        var target = state.primaryUpstream
        if let upstream {
            guard let named = state.upstream(named: upstream) else {
                FileHandle.standardError.write(
                    Data("portcullis: no upstream named \"\(upstream)\" (configured: \(state.upstreamTargets.map(\.name).joined(separator: ", ")))\n".utf8))
                throw ExitCode(1)
            }
            target = named
        }
        let result = try Self.write(state: state, directory: out, upstream: target)
        print(result.block, terminator: "")
        for warning in result.warnings {
            FileHandle.standardError.write(Data("warning: \(warning)\n".utf8))
        }
    }

    /// Writes the trust file and returns the `auth:` block for the registry's config.yml.
    static func write(state: GatewayState, directory: String, upstream target: UpstreamTarget? = nil) throws -> (block: String, path: String, warnings: [String]) {
        let configuration = state.configuration
        let target = target ?? state.primaryUpstream
        let upstream = target.configuration
        let absolute = URL(fileURLWithPath: directory).standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: absolute, withIntermediateDirectories: true)
        let trustLine: String
        let path: String
        switch target.minter.hint {
        case .jwks(let kid):
            path = (absolute as NSString).appendingPathComponent("jwks.json")
            // With a next key, trust it too, so that registry and gateway can roll in either order.
            let ownKey = target.signingKey.publicKey != state.signingKey.publicKey
            let document =
                state.nextKey == nil || ownKey
                ? target.signingKey.publicKey.jsonWebKeySet(kid: kid) : String(decoding: state.jsonWebKeySet, as: UTF8.self) + "\n"
            try Data(document.utf8).write(to: URL(fileURLWithPath: path))
            trustLine = "    jwks: \(path)"
        case .x5c, .kid:
            path = (absolute as NSString).appendingPathComponent("rootcertbundle.pem")
            guard let certificate = target.certificatePath, let data = FileManager.default.contents(atPath: certificate) else {
                throw ValidationError("\(target.configuration.key == nil ? "token.certificate" : "the upstream's certificate") is needed to write a rootcertbundle")
            }
            var bundle = data
            if target.configuration.key == nil, let next = configuration.token.nextCertificate, let nextData = FileManager.default.contents(atPath: next) {
                // Trust the next key too, so that registry and gateway can roll in either order.
                bundle.append(nextData)
            }
            try bundle.write(to: URL(fileURLWithPath: path))
            trustLine = "    rootcertbundle: \(path)"
        }
        let block = """
            auth:
              token:
                realm: \(configuration.realm)
                service: \(upstream.service)
                issuer: \(upstream.issuer)
            \(trustLine)

            """
        var warnings: [String] = []
        if upstream.registryVersion != .v2_8 {
            warnings.append(
                "registry \(upstream.registryVersion) exports traces to localhost:4318 and logs an error every few seconds unless OTEL_TRACES_EXPORTER=none is set in its environment (leave it out only if you run a collector)")
        }
        return (block, path, warnings)
    }
}
