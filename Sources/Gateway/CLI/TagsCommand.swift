import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import NIOPosix
import Policy

/// `portcullis tags --config FILE --repository NAME --digest D [--pushes]`: the tags that point to
/// a digest, or (`--pushes`) every push of it Portcullis recorded.
struct TagsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tags",
        abstract: "Print the tags of a repository whose manifest digest is --digest, one per line, asking the registry directly; with --pushes, every push of it Portcullis recorded (the push ledger, or retention.push_times).")

    @Option(name: .long, help: "The YAML configuration file.")
    var config: String
    @Option(name: .long, help: "The repository name.")
    var repository: String
    @Option(name: .long, help: "The manifest digest (sha256:…).")
    var digest: String
    @Flag(name: .long, help: "Print the recorded pushes of the digest instead: time, reference, account and replica (tab-separated; '-' where the embedded store's file has none).")
    var pushes = false

    func validate() throws {
        guard (try? RepositoryName(repository)) != nil else { throw ValidationError("--repository \"\(repository)\" is not a valid repository name") }
        guard ProxyHandler.isDigest(digest) else { throw ValidationError("--digest \"\(digest)\" is not a valid digest") }
    }

    func run() async throws {
        let state = try GatewayState.loadForCommand(path: config, exitStatus: 2)
        if pushes { return try await printPushes(state) }
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

    /// `--pushes`: from the postgres store's push ledger, or from `retention.push_times`.
    private func printPushes(_ state: GatewayState) async throws {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        switch state.configuration.state {
        case .postgres(let settings):
            let (digest, repository) = (self.digest, self.repository)
            do {
                let found = try await PostgresStateStore.using(settings, logger: Logger(label: "portcullis.tags")) { store in
                    try await store.checkSchema()
                    return try await store.pushes(of: digest, in: repository)
                }
                for push in found {
                    let time = formatter.string(from: Date(timeIntervalSince1970: push.time))
                    print("\(time)\t\(push.reference)\t\(push.account.isEmpty ? "-" : push.account)\t\(push.replica)")
                }
            } catch {
                FileHandle.standardError.write(Data("portcullis tags: state store \(settings.displayURL): \(StateStoreError.wrapping(error).description)\n".utf8))
                throw ExitCode(1)
            }
        case .embedded:
            guard let path = state.configuration.pushTimesPath else {
                FileHandle.standardError.write(Data("portcullis tags: --pushes needs retention.push_times or state.store postgres in \(config)\n".utf8))
                throw ExitCode(2)
            }
            let text = FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let decoder = JSONDecoder()
            for line in text.split(separator: "\n") {
                guard let record = try? decoder.decode(PushRecord.self, from: Data(line.utf8)), record.repository == repository, record.digest == digest
                else { continue }
                print("\(record.time)\t\(record.reference)\t-\t-")
            }
        }
    }
}
