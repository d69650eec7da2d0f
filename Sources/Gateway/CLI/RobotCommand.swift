import ArgumentParser
import Foundation
import Logging
import Policy
import PortcullisConfiguration

/// `portcullis robot …`: robot credentials for automation.
struct RobotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "robot", abstract: "Manage robot credentials in the robots file named by users.robots, or in the postgres state store.",
        subcommands: [CreateCommand.self, ListCommand.self, RevokeCommand.self])

    /// Options shared by the robot commands.
    struct ConfigOption: ParsableArguments {
        @Option(name: .long, help: "The YAML configuration file (its users.robots names the robots file, or its state: the postgres store).")
        var config: String

        /// The postgres state store the configuration names, and the htpasswd users a robot may
        /// not shadow; `nil` with the embedded store (robots in users.robots).
        func sharedStore() throws -> (settings: GatewayConfiguration.Postgres, htpasswdUsers: Set<String>)? {
            let configuration: GatewayConfiguration
            do {
                configuration = try ConfigurationLoader.load(path: config)
            } catch let error as ConfigurationErrors {
                throw ValidationError("\(error)")
            }
            guard case .postgres(let settings) = configuration.state else { return nil }
            return (settings, Self.htpasswdUsers(configuration))
        }

        static func htpasswdUsers(_ configuration: GatewayConfiguration) -> Set<String> {
            guard let htpasswd = configuration.htpasswd, let data = FileManager.default.contents(atPath: htpasswd),
                let file = try? HtpasswdFile(contents: String(decoding: data, as: UTF8.self))
            else { return [] }
            return Set(file.entries.keys)
        }

        /// Runs `body` against the postgres store, its failures as a message naming the database.
        func withStore<T: Sendable>(
            _ settings: GatewayConfiguration.Postgres, _ body: @escaping @Sendable (PostgresStateStore) async throws -> T
        ) async throws -> T {
            do {
                return try await PostgresStateStore.using(settings, logger: Logger(label: "portcullis.robot")) { store in
                    try await store.checkSchema()
                    return try await body(store)
                }
            } catch let error as StateStoreError {
                if case .robotExists = error { throw ValidationError(error.description) }
                throw ValidationError("state store \(settings.displayURL): \(error.description)")
            }
        }

        /// The robots file's path (users.robots) and the htpasswd users a robot may not shadow.
        func locate() throws -> (path: String, htpasswdUsers: Set<String>) {
            let configuration: GatewayConfiguration
            do {
                configuration = try ConfigurationLoader.load(path: config)
            } catch let error as ConfigurationErrors {
                throw ValidationError("\(error)")
            }
            guard let path = configuration.robots else {
                throw ValidationError("\(config) has no users.robots: name the robots file there first")
            }
            return (path, Self.htpasswdUsers(configuration))
        }

        /// The robots file's current content (empty when it does not exist yet).
        func read(_ path: String) throws -> RobotFile {
            guard let data = FileManager.default.contents(atPath: path) else { return RobotFile() }
            do {
                return try RobotFile(json: Array(data))
            } catch let error as PolicyError {
                throw ValidationError("\(path): \(error.message)")
            }
        }

        /// Reads, changes and replaces the robots file holding an exclusive `flock` on its
        /// directory, so that two `robot create`/`revoke` run at once cannot both read the same
        /// file and the second rename drop the first one's robot. The directory rather than a lock
        /// file: nothing is left behind, and root and Portcullis's user can both take it.
        func update<T>(_ change: (inout RobotFile, _ htpasswdUsers: Set<String>) throws -> T) throws -> T {
            let (path, users) = try locate()
            let directory = (path as NSString).deletingLastPathComponent
            let descriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw ValidationError("cannot open \(directory) to lock the robots file: \(String(cString: strerror(errno)))")
            }
            defer { close(descriptor) }
            while flock(descriptor, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    throw ValidationError("cannot lock \(directory) for the robots file: \(String(cString: strerror(errno)))")
                }
            }
            var file = try read(path)
            let result = try change(&file, users)
            try save(file, to: path)
            return result
        }

        /// Replaces the robots file atomically (write a sibling, then rename over it). Run as root,
        /// the new file keeps the old one's owner: Portcullis runs unprivileged (UID 65532 in
        /// deploy/k8s) and must still read the file, which only its owner may.
        func save(_ file: RobotFile, to path: String) throws {
            let temporary = path + ".tmp-\(getpid())"
            guard FileManager.default.createFile(atPath: temporary, contents: Data(file.json), attributes: [.posixPermissions: 0o600]) else {
                throw ValidationError("cannot write \(temporary)")
            }
            var existing = stat()
            if geteuid() == 0, stat(path, &existing) == 0, existing.st_uid != 0 || existing.st_gid != 0 {
                guard chown(temporary, existing.st_uid, existing.st_gid) == 0 else {
                    let reason = String(cString: strerror(errno))
                    unlink(temporary)
                    throw ValidationError("cannot give \(temporary) the owner of \(path): \(reason)")
                }
            }
            guard rename(temporary, path) == 0 else {
                unlink(temporary)
                throw ValidationError("cannot replace \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// `portcullis robot create NAME --expires 30d [--label k=v]`.
    struct CreateCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Create a robot; prints its secret once and stores only a hash.")

        @OptionGroup var options: ConfigOption
        @Argument(help: "The robot's account name.") var name: String
        @Option(name: .long, help: "Lifetime: a number with s, m, h or d (30d), or never.") var expires: String
        @Option(name: .long, help: "A label, key=value (repeatable).") var label: [String] = []

        func run() async throws {
            guard !name.isEmpty, !name.contains(":"), name != Rule.anonymousAccount else {
                throw ValidationError("invalid robot name \"\(name)\" (no colon, not \"anonymous\")")
            }
            let lifetime = try RobotCommand.parseDuration(expires)
            var labels: [String: [String]] = [:]
            for item in label {
                guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                    throw ValidationError("--label must be key=value (got \"\(item)\")")
                }
                labels[String(item[..<equals]), default: []].append(String(item[item.index(after: equals)...]))
            }
            var generator = SystemRandomNumberGenerator()
            let secret = RobotFile.makeSecret(using: &generator)
            let now = Date().timeIntervalSince1970
            let robot = RobotCredential(
                name: name, secretHash: RobotCredential.hash(secret: secret), expires: lifetime.map { now + $0 }, labels: labels,
                created: now.rounded(.down))
            if let (settings, users) = try options.sharedStore() {
                guard !users.contains(name) else {
                    throw ValidationError("\"\(name)\" is an htpasswd user; choose another robot name")
                }
                try await options.withStore(settings) { try await $0.create(robot) }
            } else {
                try create(robot)
            }
            print(secret)
            // Standard output is buffered when it is not a terminal: the secret goes out before the
            // note on standard error, also when both are captured together (2>&1).
            fflush(nil)
            let until = lifetime.map { "until \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: now + $0)))" } ?? "without expiry"
            FileHandle.standardError.write(Data("robot \"\(name)\" created \(until); the secret above is shown only once\n".utf8))
        }

        /// Adds `robot` to the robots file.
        private func create(_ robot: RobotCredential) throws {
            try options.update { file, users in
                guard !file.robots.contains(where: { $0.name == name }) else {
                    throw ValidationError("robot \"\(name)\" already exists; revoke it first")
                }
                guard !users.contains(name) else {
                    throw ValidationError("\"\(name)\" is an htpasswd user; choose another robot name")
                }
                file.robots.append(robot)
            }
        }
    }

    /// `portcullis robot list`.
    struct ListCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List robots (never their secrets).")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let robots: [RobotCredential]
            if let (settings, _) = try options.sharedStore() {
                robots = try await options.withStore(settings) { try await $0.robots() }
            } else {
                robots = try options.read(try options.locate().path).robots
            }
            let now = Date().timeIntervalSince1970
            let formatter = ISO8601DateFormatter()
            for robot in robots {
                let expiry = robot.expires.map { ($0 <= now ? "expired " : "expires ") + formatter.string(from: Date(timeIntervalSince1970: $0)) } ?? "never expires"
                let labels = robot.labels.keys.sorted().flatMap { key in robot.labels[key]!.map { "\(key)=\($0)" } }.joined(separator: ",")
                print("\(robot.name)\t\(expiry)\t\(labels.isEmpty ? "-" : labels)")
            }
        }
    }

    /// `portcullis robot revoke NAME`.
    struct RevokeCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke", abstract: "Remove a robot; a running Portcullis stops accepting it within a second.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The robot's account name.") var name: String

        func run() async throws {
            if let (settings, _) = try options.sharedStore() {
                let name = self.name
                guard try await options.withStore(settings, { try await $0.revoke(name) }) else {
                    throw ValidationError("no robot named \"\(name)\"")
                }
                print("robot \"\(name)\" revoked")
                return
            }
            try options.update { file, _ in
                guard file.robots.contains(where: { $0.name == name }) else {
                    throw ValidationError("no robot named \"\(name)\"")
                }
                file.robots.removeAll { $0.name == name }
            }
            print("robot \"\(name)\" revoked")
        }
    }

    /// Parses `30d`, `12h`, `90m`, `45s` or `never` into seconds (`nil` for never).
    static func parseDuration(_ text: String) throws -> Double? {
        if text == "never" { return nil }
        guard let unit = text.last, let value = Double(text.dropLast()), value > 0 else {
            throw ValidationError("--expires must be a positive number with s, m, h or d, or never (got \"\(text)\")")
        }
        switch unit {
        case "s": return value
        case "m": return value * 60
        case "h": return value * 3600
        case "d": return value * 86_400
        default: throw ValidationError("--expires unit must be s, m, h or d (got \"\(text)\")")
        }
    }
}
