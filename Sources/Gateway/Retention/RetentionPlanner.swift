import Foundation
import Policy

/// The retention plan of one repository as `portcullis prune` computes it: its tags and their
/// digests, each image's time (``ImageTime``: the config's `created`, else the push time
/// Portcullis recorded), and the plan the criteria make of them. Shared by the command and the registry
/// browser's prune preview.
struct RetentionPlanner {
    /// A repository's plan, and each digest's time (``ImageTime``: its creation, else its push).
    struct Planned {
        var plan: RetentionPlan
        var times: [String: ImageTime]

        /// How the plan prints `digest`'s time: `created …`, `pushed …` or `time unknown`.
        func time(of digest: String) -> String { ImageTime.describe(times[digest]) }
    }

    let api: RegistryAPI
    /// `retention.push_times` or the state store's push ledger, read once per planner.
    let pushTimes: [String: [String: Double]]
    /// `content:`: the tags a content rule keeps immutable are kept.
    let content: ContentRules

    init(api: RegistryAPI, pushTimesPath: String?, content: ContentRules = ContentRules()) {
        self.init(
            api: api,
            pushTimes: pushTimesPath
                .flatMap { FileManager.default.contents(atPath: $0) }
                .map { PushRecord.latestPushTimes(in: String(decoding: $0, as: UTF8.self)) } ?? [:],
            content: content)
    }

    init(api: RegistryAPI, pushTimes: [String: [String: Double]], content: ContentRules = ContentRules()) {
        self.api = api
        self.content = content
        self.pushTimes = pushTimes
    }

    /// A planner with the push times of `state`'s store: the push ledger when `store` is the
    /// postgres store (optionally of one repository), else `retention.push_times`.
    /// - Throws: ``StateStoreError`` when the ledger cannot be read.
    static func make(
        api: RegistryAPI, state: GatewayState, store: PostgresStateStore?, repository: String? = nil
    ) async throws -> RetentionPlanner {
        guard let store else { return RetentionPlanner(api: api, pushTimesPath: state.configuration.pushTimesPath, content: state.contentRules) }
        return RetentionPlanner(api: api, pushTimes: try await store.latestPushTimes(repository: repository), content: state.contentRules)
    }

    /// The plan for `name`; `nil` when the repository does not exist.
    func plan(_ name: RepositoryName, criteria: RetentionCriteria, now: Double = Date().timeIntervalSince1970) async throws -> Planned? {
        let digests: [String: String]
        do {
            digests = try await api.tagDigests(of: name)
        } catch let error as RegistryAPIError where error.code == .notFound {
            return nil
        }
        let inspector = ImageInspector(api: api)
        let api = self.api
        let facts = try await withThrowingTaskGroup(of: (String, ImageInspector.Facts).self) { group in
            var facts: [String: ImageInspector.Facts] = [:]
            var pending = Set(digests.values).sorted()[...]
            func next() {
                guard let digest = pending.popFirst() else { return }
                group.addTask { (digest, try await inspector.facts(of: digest, in: name)) }
            }
            for _ in 0..<api.concurrency { next() }
            while let (digest, found) = try await group.next() {
                facts[digest] = found
                next()
            }
            return facts
        }
        let pushed = pushTimes[name.value] ?? [:]
        var times: [String: ImageTime] = [:]
        for digest in Set(digests.values) {
            times[digest] = ImageTime(created: facts[digest]?.created, pushed: pushed[digest])
        }
        let tags = digests.map { tag, digest in
            TaggedManifest(tag: tag, digest: digest, created: times[digest]?.seconds, references: facts[digest]?.references ?? [])
        }
        return Planned(plan: RetentionPlan(tags: tags, criteria: criteria, now: now, content: content.rule(for: name.value)), times: times)
    }
}
