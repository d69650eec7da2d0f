import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOPosix
import Policy

/// `portcullis verify --config FILE REPOSITORY[:TAG|@DIGEST]`: whether Portcullis would serve a
/// manifest under `content[].signed_by`, with which key, or why not (like `cosign verify`).
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Say whether Portcullis would serve REPOSITORY[:TAG|@DIGEST] under the content rules' signed_by, with which key, or why not.",
        discussion: """
            Asks the registry directly, as the gateway does, with the deployment's own configuration and keys. \
            Exit status 0 when the manifest would be served (signed by an accepted key, or no signed_by rule applies), \
            1 when it would be refused, 2 when the registry or the configuration cannot be read. A manifest pulled by \
            digest that only a signed index lists is checked on its own here, as after a restart.
            """)

    @Option(name: .long, help: "The YAML configuration file.")
    var config: String

    @Argument(help: "REPOSITORY[:TAG|@DIGEST] (the tag defaults to latest).")
    var reference: String

    /// The repository and the tag or digest of ``reference``.
    var parsed: (repository: String, reference: String)? {
        if let at = reference.firstIndex(of: "@") {
            return (String(reference[..<at]), String(reference[reference.index(after: at)...]))
        }
        if let colon = reference.lastIndex(of: ":"), !reference[reference.index(after: colon)...].contains("/") {
            return (String(reference[..<colon]), String(reference[reference.index(after: colon)...]))
        }
        return (reference, "latest")
    }

    func validate() throws {
        guard let parsed, (try? RepositoryName(parsed.repository)) != nil, !parsed.reference.isEmpty else {
            throw ValidationError("\"\(reference)\" is not REPOSITORY[:TAG|@DIGEST]")
        }
        if parsed.reference.contains(":") && !ProxyHandler.isDigest(parsed.reference) {
            throw ValidationError("\"\(parsed.reference)\" is not a valid digest")
        }
    }

    func run() async throws {
        let state = try GatewayState.loadForCommand(path: config, exitStatus: 2)
        guard let parsed, let repository = try? RepositoryName(parsed.repository) else { throw ExitCode(2) }
        guard let rule = state.contentRules.rule(for: repository.value), !rule.signedBy.isEmpty else {
            print("\(reference): no content rule requires signatures in \(repository.value); served as the rules allow")
            return
        }
        print("content rule: \(rule)")
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        let api = RegistryAPI.minting(for: "portcullis-verify", state: state, client: client, target: state.upstream(for: repository.value, health: nil))
        let result: Result<(String, SignatureVerdict)?, any Error>
        do {
            var digest: String? = parsed.reference
            if !parsed.reference.contains(":") { digest = try await api.digest(of: parsed.reference, in: repository) }
            if let digest {
                let verdict = try await SignatureVerifier(caches: SignatureCaches()).verdict(
                    for: digest, in: repository, rule: rule, api: api, now: Date().timeIntervalSince1970)
                result = .success((digest, verdict))
            } else {
                result = .success(nil)
            }
        } catch {
            result = .failure(error)
        }
        try? await client.shutdown()
        switch result {
        case .success(let (digest, verdict)?):
            print("\(repository.value)@\(digest)")
            if verdict.isVerified {
                print("served: \(verdict)")
            } else {
                print("refused: \(ContentRefusal.notSigned(repository: repository, digest: digest, rule: rule, verdict: verdict))")
                throw ExitCode(1)
            }
        case .success(nil):
            print("\(reference): no such tag")
            throw ExitCode(1)
        case .failure(let error):
            FileHandle.standardError.write(Data("portcullis verify: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}
