import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOPosix
import Policy

/// `portcullis tags --config FILE --repository NAME --digest D`: the tags that point to a digest.
struct TagsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tags",
        abstract: "Print the tags of a repository whose manifest digest is --digest, one per line, asking the registry directly.")

    @Option(name: .long, help: "The YAML configuration file.")
    var config: String
    @Option(name: .long, help: "The repository name.")
    var repository: String
    @Option(name: .long, help: "The manifest digest (sha256:…).")
    var digest: String

    func validate() throws {
        guard (try? RepositoryName(repository)) != nil else { throw ValidationError("--repository \"\(repository)\" is not a valid repository name") }
        guard ProxyHandler.isDigest(digest) else { throw ValidationError("--digest \"\(digest)\" is not a valid digest") }
    }

    func run() async throws {
        let state = try GatewayState.loadForCommand(path: config, exitStatus: 2)
        let name = try RepositoryName(repository)
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        let result: Result<[String: String], any Error>
        do {
            result = .success(try await RegistryAPI.minting(for: "portcullis-tags", state: state, client: client).tagDigests(of: name))
        } catch {
            result = .failure(error)
        }
        try? await client.shutdown()
        switch result {
        case .success(let digests):
            for tag in digests.filter({ $0.value == digest }).keys.sorted() { print(tag) }
        case .failure(let error):
            FileHandle.standardError.write(Data("portcullis tags: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
