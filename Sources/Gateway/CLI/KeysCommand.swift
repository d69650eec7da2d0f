import ArgumentParser
import Foundation
import Policy

/// `portcullis keys …`: key ids and key generation.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Inspect and generate token-signing keys.",
        subcommands: [IdentifiersCommand.self, GenerateCommand.self])

    /// `portcullis keys id FILE.pem`.
    struct IdentifiersCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "id", abstract: "Print every key id the registries compute for a key or certificate.")

        @Argument(help: "A PEM public key, private key or certificate.")
        var file: String

        func run() throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read \(file)")
            }
            let key: PublicKeyMaterial
            do {
                key = try PublicKeyMaterial(pem: String(decoding: data, as: UTF8.self))
            } catch let error as PolicyError {
                throw ValidationError("\(file): \(error.message)")
            }
            let identifiers = KeyIdentifiers(key)
            print("libtrust \(identifiers.libtrust)")
            print("rfc7638 \(identifiers.rfc7638)")
            print("registry-3.1 \(identifiers.registry31)")
            switch identifiers.registry30 {
            case .success(let kid): print("registry-3.0 \(kid)")
            case .failure(let error): print("registry-3.0 unsupported: \(error.message)")
            }
        }
    }

    /// `portcullis keys generate --out DIR`.
    struct GenerateCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "generate",
            abstract: "Write a private key (token.key) and a self-signed certificate (token.crt) usable as the registry's rootcertbundle.")

        @Option(name: .long, help: "The directory to write token.key and token.crt into.")
        var out: String

        @Option(name: .long, help: "es256 or rs256.")
        var algorithm: String = "es256"

        @Flag(name: .long, help: "Overwrite existing files.")
        var force = false

        func run() throws {
            guard let algorithm = KeyGenerator.Algorithm(rawValue: algorithm) else {
                throw ValidationError("--algorithm must be es256 or rs256 (got \(self.algorithm))")
            }
            let keyPath = (out as NSString).appendingPathComponent("token.key")
            let certificatePath = (out as NSString).appendingPathComponent("token.crt")
            for path in [keyPath, certificatePath] where FileManager.default.fileExists(atPath: path) && !force {
                throw ValidationError("\(path) already exists; pass --force to overwrite it")
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let output = try KeyGenerator.generate(algorithm, now: Date())
            guard FileManager.default.createFile(atPath: keyPath, contents: Data(output.privateKeyPEM.utf8), attributes: [.posixPermissions: 0o600]),
                FileManager.default.createFile(atPath: certificatePath, contents: Data(output.certificatePEM.utf8))
            else {
                throw ValidationError("cannot write into \(out)")
            }
            print("wrote \(keyPath)")
            print("wrote \(certificatePath)")
        }
    }
}
