import ArgumentParser
import Foundation
import Logging
import Policy
import PortcullisConfiguration

/// `portcullis state …`: the postgres state store's schema, its health, and importing what one
/// replica kept in files.
struct StateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state", abstract: "The postgres state store (state.store: postgres): migrate its schema, check it, import files.",
        subcommands: [MigrateCommand.self, CheckCommand.self, ImportCommand.self])

    /// The store a configuration names; exits 2 with a message when it names none.
    static func settings(_ path: String) throws -> GatewayConfiguration.Postgres {
        let configuration: GatewayConfiguration
        do {
            configuration = try ConfigurationLoader.load(path: path)
        } catch let error as ConfigurationErrors {
            FileHandle.standardError.write(Data("portcullis: invalid configuration\n\(error)\n".utf8))
            throw ExitCode(2)
        }
        guard case .postgres(let settings) = configuration.state else {
            FileHandle.standardError.write(Data("portcullis state: \(path) uses the embedded store (state.store: postgres names a database)\n".utf8))
            throw ExitCode(2)
        }
        return settings
    }

    /// Prints `error` about `settings`'s database and exits 1.
    static func fail(_ settings: GatewayConfiguration.Postgres, _ error: any Error) -> ExitCode {
        FileHandle.standardError.write(Data("portcullis state: \(settings.displayURL): \(StateStoreError.wrapping(error).description)\n".utf8))
        return ExitCode(1)
    }

    /// `portcullis state migrate --config FILE [--to N]`.
    struct MigrateCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "migrate", abstract: "Create or upgrade Portcullis's schema in the database (serve does this at start too).")
        @Option(name: .long, help: "The YAML configuration file.") var config: String
        @Option(name: .long, help: "Stop at this schema version (default: the newest this Portcullis knows).") var to: Int?

        func run() async throws {
            let settings = try StateCommand.settings(config)
            let target = to ?? StateSchema.current
            guard (1...StateSchema.current).contains(target) else {
                throw ValidationError("--to must be between 1 and \(StateSchema.current)")
            }
            do {
                let (from, reached) = try await PostgresStateStore.using(settings, logger: Logger(label: "portcullis.state")) { try await $0.migrate(to: target) }
                print(from == reached ? "schema version \(reached): nothing to do" : "schema migrated from version \(from) to \(reached)")
            } catch {
                throw StateCommand.fail(settings, error)
            }
        }
    }

    /// `portcullis state check --config FILE`.
    struct CheckCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check", abstract: "Connect, check the schema version, and count robots and ledger entries; exit 1 when the database cannot be used.")
        @Option(name: .long, help: "The YAML configuration file.") var config: String

        func run() async throws {
            let settings = try StateCommand.settings(config)
            do {
                let (robots, entries) = try await PostgresStateStore.using(settings, logger: Logger(label: "portcullis.state")) { store in
                    try await store.checkSchema()
                    return (try await store.robots().count, try await store.ledgerCount())
                }
                print("\(settings.displayURL): schema version \(StateSchema.current), \(robots) robot\(robots == 1 ? "" : "s"), \(entries) push ledger entr\(entries == 1 ? "y" : "ies")")
            } catch {
                throw StateCommand.fail(settings, error)
            }
        }
    }

    /// `portcullis state import --config FILE [--robots FILE] [--push-times FILE]`.
    struct ImportCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Copy a robots file and a push_times file of the embedded store into the database (robots already there are kept; importing a file twice adds nothing).")
        @Option(name: .long, help: "The YAML configuration file.") var config: String
        @Option(name: .long, help: "A robots file (users.robots of the embedded store).") var robots: String?
        @Option(name: .customLong("push-times"), help: "A push_times file (retention.push_times of the embedded store).") var pushTimes: String?

        func run() async throws {
            let settings = try StateCommand.settings(config)
            guard robots != nil || pushTimes != nil else { throw ValidationError("give --robots FILE, --push-times FILE, or both") }
            var robotFile = RobotFile()
            if let robots {
                guard let data = FileManager.default.contents(atPath: robots) else { throw ValidationError("cannot read \(robots)") }
                do {
                    robotFile = try RobotFile(json: Array(data))
                } catch let error as PolicyError {
                    throw ValidationError("\(robots): \(error.message)")
                }
            }
            var entries: [PushLedgerEntry] = []
            var skipped = 0
            if let pushTimes {
                guard let data = FileManager.default.contents(atPath: pushTimes) else { throw ValidationError("cannot read \(pushTimes)") }
                (entries, skipped) = Self.ledgerEntries(String(decoding: data, as: UTF8.self))
            }
            let found = robotFile.robots
            let pushes = entries
            do {
                let created = try await PostgresStateStore.using(settings, logger: Logger(label: "portcullis.state")) { store in
                    try await store.checkSchema()
                    var created = 0
                    for robot in found {
                        do {
                            try await store.create(robot)
                            created += 1
                        } catch StateStoreError.robotExists {
                            continue
                        }
                    }
                    for start in stride(from: 0, to: pushes.count, by: 256) {
                        try await store.write(Array(pushes[start..<min(start + 256, pushes.count)]))
                    }
                    return created
                }
                if robots != nil { print("robots: \(created) imported, \(found.count - created) already in the database") }
                if pushTimes != nil { print("push times: \(pushes.count) imported\(skipped > 0 ? ", \(skipped) lines skipped (not a push_times line)" : "")") }
            } catch {
                throw StateCommand.fail(settings, error)
            }
        }

        /// The push_times lines as ledger entries. Each entry's identifier is derived from its
        /// line, so importing the same file again adds nothing.
        static func ledgerEntries(_ text: String) -> (entries: [PushLedgerEntry], skipped: Int) {
            let decoder = JSONDecoder()
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            let plain = ISO8601DateFormatter()
            var entries: [PushLedgerEntry] = []
            var skipped = 0
            for line in text.split(separator: "\n") where !line.allSatisfy(\.isWhitespace) {
                guard let record = try? decoder.decode(PushRecord.self, from: Data(line.utf8)),
                    let time = formatter.date(from: record.time) ?? plain.date(from: record.time)
                else {
                    skipped += 1
                    continue
                }
                entries.append(PushLedgerEntry(entry: Self.identifier(of: record.jsonLine), record: record, account: "", time: time.timeIntervalSince1970))
            }
            return (entries, skipped)
        }

        /// A UUID made of the line's SHA-256 (version 5's layout, with SHA-256 in place of SHA-1).
        static func identifier(of line: String) -> UUID {
            let hex = Array(ManifestDigest.sha256(Array(line.utf8)).dropFirst("sha256:".count).utf8)
            var bytes = (0..<16).map { UInt8(String(decoding: hex[($0 * 2)..<($0 * 2 + 2)], as: UTF8.self), radix: 16) ?? 0 }
            bytes[6] = (bytes[6] & 0x0F) | 0x50
            bytes[8] = (bytes[8] & 0x3F) | 0x80
            return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
        }
    }
}
