import Foundation

/// The robots file: every robot credential, stored as JSON with secrets only as hashes.
///
/// Reading and writing bytes is the caller's business; this type only converts.
public struct RobotFile: Sendable, Equatable {
    /// The robots, in the order they were created.
    public var robots: [RobotCredential]

    /// An empty file.
    public init(robots: [RobotCredential] = []) {
        self.robots = robots
    }

    private struct Document: Codable {
        var robots: [RobotCredential]
    }

    /// Decodes the file's bytes; empty content is an empty file.
    /// - Throws: ``PolicyError/Code/malformedCredentialEntry`` when the JSON is not a robots file.
    public init(json: [UInt8]) throws {
        if json.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            self.robots = []
            return
        }
        do {
            self.robots = try JSONDecoder().decode(Document.self, from: Data(json)).robots
        } catch {
            throw PolicyError(.malformedCredentialEntry, "robots file is not valid: \(error)")
        }
        var seen: Set<String> = []
        for robot in robots where !seen.insert(robot.name).inserted {
            throw PolicyError(.malformedCredentialEntry, "robots file names robot \"\(robot.name)\" twice")
        }
    }

    /// The file's bytes: pretty JSON, robots in order.
    public var json: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(Document(robots: robots))) ?? Data()) + [0x0A]
    }

    /// A new secret: 32 random bytes, base64url.
    public static func makeSecret<Generator: RandomNumberGenerator>(using generator: inout Generator) -> String {
        Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
