import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import NIOPosix
import Policy

/// `portcullis prune …`: deletes the manifests of old tags, as a robot that policy lets delete.
struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete the manifests of old tags through policy. Only prints the plan unless --yes is given.",
        discussion: """
            Tags matching --tag-pattern (default: every tag) and no --exclude are candidates; they are grouped \
            into images by manifest digest. An image is deleted when it is not among the --keep-last newest \
            candidate images and was created more than --older-than ago (both when both are given). A digest \
            that a kept tag points to is never deleted. Creation time is the image config's `created`, else the \
            push time Portcullis recorded in retention.push_times; an image with neither counts as new. The run acts as --robot, which must exist in users.robots and be granted \
            pull and delete on every matching repository by the rules. Each deletion prints one JSON audit line.
            """)

    @Option(name: .long, help: "The YAML configuration file.")
    var config: String
    @Option(name: .long, help: "Repositories: a name, a glob (* within one path segment, ** across) or /regex/.")
    var repository: String
    @Option(name: .long, help: "Keep the N newest candidate images (by manifest digest).")
    var keepLast: Int?
    @Option(name: .long, help: "Delete only images created longer ago than this: a number with s, m, h, d or w (30d).")
    var olderThan: String?
    @Option(name: .long, help: "Only tags matching this glob (or /regex/) may be deleted.")
    var tagPattern: String?
    @Option(name: .long, help: "Tags matching this glob (or /regex/) are always kept (repeatable).")
    var exclude: [String] = []
    @Option(name: .long, help: "The robot account the deletions are authorized as.")
    var robot = Self.defaultRobot

    /// The robot `--robot` names unless told otherwise.
    static let defaultRobot = "portcullis-prune"
    @Flag(name: .long, help: "Only print the plan (the default).")
    var dryRun = false
    @Flag(name: .long, help: "Really delete.")
    var yes = false

    func validate() throws {
        if dryRun && yes { throw ValidationError("--dry-run and --yes contradict each other") }
        if let keepLast, keepLast < 0 { throw ValidationError("--keep-last must be 0 or more") }
        if keepLast == nil && olderThan == nil && tagPattern == nil {
            throw ValidationError("give at least one of --keep-last, --older-than and --tag-pattern: without them every tag would go")
        }
        if let olderThan { _ = try Self.parseAge(olderThan) }
        _ = try criteria()
        if !Self.isPattern(repository), (try? RepositoryName(repository)) == nil {
            throw ValidationError("--repository \"\(repository)\" is neither a repository name nor a pattern")
        }
    }

    /// The criteria the options describe.
    func criteria() throws -> RetentionCriteria {
        func pattern(_ text: String, _ option: String) throws -> Pattern {
            do { return try Pattern(text) } catch { throw ValidationError("\(option) \"\(text)\": \(error)") }
        }
        return RetentionCriteria(
            keepLast: keepLast, olderThan: try olderThan.map(Self.parseAge), tagPattern: try tagPattern.map { try pattern($0, "--tag-pattern") },
            exclude: try exclude.map { try pattern($0, "--exclude") })
    }

    /// The criteria as given, for the audit record.
    var criteriaDescription: String {
        var parts: [String] = []
        if let keepLast { parts.append("--keep-last \(keepLast)") }
        if let olderThan { parts.append("--older-than \(olderThan)") }
        if let tagPattern { parts.append("--tag-pattern \(tagPattern)") }
        parts += exclude.map { "--exclude \($0)" }
        return parts.joined(separator: " ")
    }

    func run() async throws {
        var state = try GatewayState.loadForCommand(path: config, exitStatus: 2)
        // With the postgres store, robots and push times are the database's.
        var ledger: [String: [String: Double]]?
        if case .postgres(let settings) = state.configuration.state {
            let configuration = state.configuration
            do {
                (state, ledger) = try await PostgresStateStore.using(settings, logger: Logger(label: "portcullis.prune")) { store in
                    try await store.checkSchema()
                    let loaded = try GatewayState.load(configuration, robots: try await store.robots())
                    return (loaded, try await store.latestPushTimes())
                }
            } catch let error as StateStoreError {
                fail("state store \(settings.displayURL): \(error.description)")
            }
        }
        // Deletions go to the configured audit stream too (standard output already has them).
        let audit = state.configuration.auditDestination
        GatewayRunner.bootstrapLogging(level: state.configuration.logLevel, audit: audit == "stdout" ? "off" : audit)
        let logger = Logger(label: "portcullis.prune")

        // The robot, and what policy lets it do.
        let now = Date().timeIntervalSince1970
        guard state.credentials.robots[robot] != nil else {
            fail("no robot \"\(robot)\" in \(ledger == nil ? "users.robots" : "the state store"): create it with `portcullis robot create \(robot) --config \(config) --expires 365d` and grant it pull and delete in the rules")
        }
        let identity: Identity
        do {
            identity = try state.credentials.currentIdentity(account: robot, now: now)
        } catch let error as PolicyError {
            fail("robot \"\(robot)\" cannot act: \(error.message)")
        }

        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.redirectConfiguration = .disallow
        clientConfiguration.decompression = .disabled
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: clientConfiguration)
        let api = RegistryAPI.minting(for: robot, state: state, client: client)
        let outcome: Result<Bool, any Error>
        do {
            outcome = .success(try await prune(api: api, identity: identity, state: state, ledger: ledger, logger: logger))
        } catch {
            outcome = .failure(error)
        }
        try? await client.shutdown()
        switch outcome {
        case .success(true): return
        case .success(false): throw ExitCode(1)
        case .failure(let error as RegistryAPIError): fail(error.message)
        case .failure(let error): throw error
        }
    }

    /// Plans (and with `--yes` carries out) the prune of every matching repository.
    /// - Returns: whether everything planned succeeded.
    private func prune(api: RegistryAPI, identity: Identity, state: GatewayState, ledger: [String: [String: Double]]?, logger: Logger) async throws -> Bool {
        let criteria = try criteria()
        let repositories = try await matchingRepositories(api: api)
        guard !repositories.isEmpty else {
            print("no repository matches \(repository)")
            return true
        }

        // Policy must let the robot read and delete in every one of them, or nothing happens.
        let refusals = repositories.compactMap { Self.refusal(robot: robot, identity: identity, repository: $0, rules: state.rules) }
        guard refusals.isEmpty else {
            for refusal in refusals { FileHandle.standardError.write(Data("portcullis prune: \(refusal)\n".utf8)) }
            FileHandle.standardError.write(Data("portcullis prune: nothing was deleted\n".utf8))
            return false
        }

        // Push times Portcullis recorded (retention.push_times, or the postgres store's push
        // ledger) time images without a creation time.
        let planner = ledger.map { RetentionPlanner(api: api, pushTimes: $0, content: state.contentRules) }
            ?? RetentionPlanner(api: api, pushTimesPath: state.configuration.pushTimesPath, content: state.contentRules)
        var succeeded = true
        var plannedCount = 0
        for name in repositories {
            guard let planned = try await planner.plan(name, criteria: criteria) else {
                print("\(name): no such repository")
                continue
            }
            report(planned, repository: name)
            plannedCount += planned.plan.deletions.count
            if yes, !planned.plan.deletions.isEmpty {
                succeeded = try await carryOut(planned, repository: name, api: api, logger: logger) && succeeded
            }
        }
        if !yes {
            print("dry run: nothing was deleted; run again with --yes to delete \(plannedCount) manifest\(plannedCount == 1 ? "" : "s")")
        }
        return succeeded
    }

    /// The repositories `--repository` names: the name itself, or the catalog's matches.
    private func matchingRepositories(api: RegistryAPI) async throws -> [RepositoryName] {
        guard Self.isPattern(repository) else { return [try RepositoryName(repository)] }
        let pattern = try Pattern(repository)
        return try await api.catalog().filter { pattern.matches($0) }.compactMap { try? RepositoryName($0) }.sorted()
    }

    /// Prints the plan: one line per deleted manifest and one per kept tag.
    /// Each line says whether its time is the image's creation or its recorded push (``ImageTime``).
    private func report(_ planned: RetentionPlanner.Planned, repository name: RepositoryName) {
        let plan = planned.plan
        func count(_ number: Int, _ noun: String) -> String { "\(number) \(noun)\(number == 1 ? "" : "s")" }
        print(
            "\(name): \(count(plan.decisions.count, "tag")); delete \(count(plan.deletions.count, "manifest")) (\(count(plan.deletedTags.count, "tag"))), keep \(count(plan.keptTags.count, "tag"))")
        for deletion in plan.deletions {
            print("  delete \(deletion.digest)  \(planned.time(of: deletion.digest))  tags \(deletion.tags.joined(separator: " "))")
        }
        for decision in plan.decisions {
            guard let reason = decision.keptBecause else { continue }
            print("  keep   \(decision.manifest.tag)  \(decision.manifest.digest)  \(planned.time(of: decision.manifest.digest))  (\(reason))")
        }
    }

    /// Deletes the planned manifests, re-checking first that no other tag moved onto them.
    private func carryOut(
        _ planned: RetentionPlanner.Planned, repository name: RepositoryName, api: RegistryAPI, logger: Logger
    ) async throws -> Bool {
        let plan = planned.plan
        var succeeded = true
        let current = try await api.tagDigests(of: name)
        for deletion in plan.deletions {
            let taggedNow = Set(current.filter { $0.value == deletion.digest }.keys)
            let newcomers = taggedNow.subtracting(deletion.tags)
            guard newcomers.isEmpty else {
                FileHandle.standardError.write(
                    Data("portcullis prune: \(name)@\(deletion.digest) not deleted: tag \(newcomers.sorted().joined(separator: ", ")) now points to it\n".utf8))
                continue
            }
            do {
                try await api.deleteManifest(deletion.digest, in: name)
            } catch let error as RegistryAPIError where error.code == .notFound {
                print("  gone   \(deletion.digest)  (already deleted)")
                continue
            } catch let error as RegistryAPIError {
                FileHandle.standardError.write(Data("portcullis prune: \(error.message)\n".utf8))
                succeeded = false
                if error.code == .deleteDisabled || error.code == .tokenRejected { return false }
                continue
            }
            let record = PruneAuditRecord(
                time: Self.format(Date().timeIntervalSince1970), robot: robot, registry: api.baseURL, repository: name.value,
                digest: deletion.digest, tags: deletion.tags,
                created: planned.times[deletion.digest].flatMap { $0.source == .created ? Self.format($0.seconds) : nil },
                pushed: planned.times[deletion.digest].flatMap { $0.source == .pushed ? Self.format($0.seconds) : nil },
                criteria: criteriaDescription)
            print(record.jsonLine)
            Logger(label: GatewayRunner.auditLabel).info("prune.delete", metadata: record.auditMetadata)
            logger.notice(
                "manifest deleted by prune",
                metadata: [
                    "audit": "true", "robot": "\(robot)", "repository": "\(name)", "digest": "\(deletion.digest)",
                    "tags": "\(deletion.tags.joined(separator: ","))", "registry": "\(api.baseURL)",
                ])
        }
        return succeeded
    }

    /// Prints `message` on standard error and exits with status 1.
    private func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("portcullis prune: \(message)\n".utf8))
        Foundation.exit(1)
    }

    /// Why `robot` (known as `identity`) may not prune `repository`, or `nil` when the rules grant
    /// it pull and delete there.
    static func refusal(robot: String, identity: Identity, repository: RepositoryName, rules: RuleSet) -> String? {
        let grant = rules.grant([Scope(resource: .repository(repository), actions: [.pull, .delete])], to: identity)
        guard !grant.isComplete else { return nil }
        return "robot \"\(robot)\" may not prune \(repository): the rules must grant it pull and delete (\(grant.decisions[0]))"
    }

    /// Why `portcullis prune --robot ROBOT --repository REPOSITORY --yes` would refuse to run
    /// with `state`, or `nil` when it would run: the checks the command makes before deleting
    /// anything (the registry browser's prune preview says so beside the command it prints).
    static func refusal(robot: String, repository: RepositoryName, state: GatewayState, now: Double) -> String? {
        guard state.credentials.robots[robot] != nil else {
            return "there is no robot \"\(robot)\" in users.robots: create it with `portcullis robot create \(robot)` and grant it pull and delete in the rules"
        }
        do {
            let identity = try state.credentials.currentIdentity(account: robot, now: now)
            return refusal(robot: robot, identity: identity, repository: repository, rules: state.rules)
        } catch let error as PolicyError {
            return "robot \"\(robot)\" cannot act: \(error.message)"
        } catch {
            return "robot \"\(robot)\" cannot act: \(error)"
        }
    }

    /// Whether `--repository` is a pattern rather than one name.
    static func isPattern(_ text: String) -> Bool {
        (text.count >= 2 && text.hasPrefix("/") && text.hasSuffix("/")) || text.contains { "*?\\".contains($0) }
    }

    /// Parses `45s`, `30m`, `12h`, `30d` or `2w` into seconds.
    static func parseAge(_ text: String) throws -> Double {
        guard let unit = text.last, let value = Double(text.dropLast()), value >= 0 else {
            throw ValidationError("--older-than must be a number with s, m, h, d or w (got \"\(text)\")")
        }
        switch unit {
        case "s": return value
        case "m": return value * 60
        case "h": return value * 3600
        case "d": return value * 86_400
        case "w": return value * 604_800
        default: throw ValidationError("--older-than unit must be s, m, h, d or w (got \"\(text)\")")
        }
    }

    /// RFC 3339 in UTC, proleptic Gregorian (``RFC3339Timestamp/format(_:)``), or `unknown`.
    static func format(_ seconds: Double?) -> String {
        seconds.map(RFC3339Timestamp.format) ?? "unknown"
    }
}
