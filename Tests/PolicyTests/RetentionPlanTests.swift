import Policy
import Testing

/// Twelve images `v1`…`v12`, `v12` the newest (created `12 - n` days before `now`), and
/// `stable` tagging the same digest as `v3`.
private let day = 86_400.0
private let now = 1_800_000_000.0
private let repository: [TaggedManifest] =
    (1...12).map { TaggedManifest(tag: "v\($0)", digest: "sha256:\($0)", created: now - Double(12 - $0) * 10 * day - 3600) }
    + [TaggedManifest(tag: "stable", digest: "sha256:3", created: now - 90 * day - 3600)]

private func remaining(_ criteria: RetentionCriteria, _ tags: [TaggedManifest] = repository) -> Set<String> {
    Set(RetentionPlan(tags: tags, criteria: criteria, now: now).keptTags)
}

private func versions(_ numbers: ClosedRange<Int>) -> Set<String> { Set(numbers.map { "v\($0)" }) }

@Suite("Retention plans: which manifests a prune deletes")
struct RetentionPlanTests {
    @Test("each criterion alone and combined keeps exactly the expected tags", arguments: [
        (RetentionCriteria(keepLast: 3), versions(10...12)),
        (RetentionCriteria(keepLast: 3, exclude: [try! Pattern("stable")]), versions(10...12).union(["v3", "stable"])),
        (RetentionCriteria(olderThan: 45 * day), versions(8...12)),
        (RetentionCriteria(keepLast: 8, olderThan: 45 * day), versions(5...12)),
        (RetentionCriteria(keepLast: 1, tagPattern: try! Pattern("v1*")), versions(2...9).union(["v12", "stable"])),
        (RetentionCriteria(olderThan: 65 * day, tagPattern: try! Pattern("v*"), exclude: [try! Pattern("v1?")]),
         versions(6...12).union(["v3", "stable"])),
        (RetentionCriteria(tagPattern: try! Pattern("/v[0-9]/")), versions(10...12).union(["v3", "stable"])),
        (RetentionCriteria(keepLast: 0), Set<String>()),
    ])
    func expectedTagsRemain(_ criteria: RetentionCriteria, _ expected: Set<String>) {
        #expect(remaining(criteria) == expected)
    }

    @Test("a digest that a kept tag points to is never deleted, and the plan says why")
    func sharedDigestSurvives() throws {
        let plan = RetentionPlan(tags: repository, criteria: RetentionCriteria(tagPattern: try Pattern("v3")), now: now)
        #expect(plan.deletions.isEmpty)
        let v3 = try #require(plan.decisions.first { $0.manifest.tag == "v3" })
        #expect(v3.keptBecause == .digestShared(with: ["stable"]))
        #expect(plan.decisions.first { $0.manifest.tag == "stable" }?.keptBecause == .notMatched)
    }

    @Test("both tags of one digest go together, in one deletion")
    func oneDeletionPerDigest() {
        let plan = RetentionPlan(tags: repository, criteria: RetentionCriteria(olderThan: 75 * day), now: now)
        let shared = plan.deletions.first { $0.digest == "sha256:3" }
        #expect(shared?.tags == ["stable", "v3"])
        #expect(plan.deletions.map(\.digest) == ["sha256:4", "sha256:3", "sha256:2", "sha256:1"], "newest first")
    }

    @Test("keep-last counts images, not tags")
    func keepLastCountsDigests() {
        let tags = [
            TaggedManifest(tag: "latest", digest: "sha256:b", created: now - 10),
            TaggedManifest(tag: "v2", digest: "sha256:b", created: now - 10),
            TaggedManifest(tag: "v1", digest: "sha256:a", created: now - 20),
        ]
        #expect(remaining(RetentionCriteria(keepLast: 1), tags) == ["latest", "v2"])
        #expect(remaining(RetentionCriteria(keepLast: 2), tags) == ["latest", "v2", "v1"])
    }

    @Test("an unknown creation time counts as new: kept by keep-last first, never older than a cutoff")
    func unknownCreationTime() {
        let tags = [
            TaggedManifest(tag: "undated", digest: "sha256:u", created: nil),
            TaggedManifest(tag: "epoch", digest: "sha256:e", created: 0),
            TaggedManifest(tag: "old", digest: "sha256:o", created: now - 100 * day),
        ]
        #expect(remaining(RetentionCriteria(olderThan: day), tags) == ["undated", "epoch"])
        #expect(remaining(RetentionCriteria(keepLast: 1), tags).count == 1)
        #expect(!remaining(RetentionCriteria(keepLast: 2), tags).contains("old"))
        let plan = RetentionPlan(tags: tags, criteria: RetentionCriteria(olderThan: day), now: now)
        #expect(plan.decisions.first { $0.manifest.tag == "epoch" }?.keptBecause == .unknownCreationTime)
    }

    @Test("a manifest that a kept index references is kept")
    func indexChildrenSurvive() {
        let tags = [
            TaggedManifest(tag: "multi", digest: "sha256:index", created: now, references: ["sha256:amd64", "sha256:arm64"]),
            TaggedManifest(tag: "amd64-only", digest: "sha256:amd64", created: now - 100 * day),
            TaggedManifest(tag: "stray", digest: "sha256:x", created: now - 100 * day),
        ]
        let plan = RetentionPlan(tags: tags, criteria: RetentionCriteria(olderThan: day), now: now)
        #expect(plan.deletedTags == ["stray"])
        #expect(plan.decisions.first { $0.manifest.tag == "amd64-only" }?.keptBecause == .referencedByKeptIndex(["multi"]))
    }

    @Test("RFC 3339 timestamps as image configs write them", arguments: [
        ("1970-01-01T00:00:00Z", 0.0),
        ("2024-02-29T12:34:56Z", 1_709_210_096.0),
        ("2024-02-29T12:34:56.5Z", 1_709_210_096.5),
        ("2024-02-29T12:34:56.123456789Z", 1_709_210_096.123456789),
        ("2024-02-29T14:34:56+02:00", 1_709_210_096.0),
        ("2024-02-29T07:04:56-05:30", 1_709_210_096.0),
        ("0001-01-01T00:00:00Z", -62_135_596_800.0),
    ])
    func timestamps(_ text: String, _ expected: Double) throws {
        let parsed = try #require(RFC3339Timestamp.parse(text))
        #expect(abs(parsed - expected) < 1e-6)
    }

    @Test("malformed timestamps are unknown", arguments: ["", "2024-02-29", "2024-02-29T12:34:56", "2024-13-01T00:00:00Z", "2024-02-29T12:34:56.Z", "yesterday"])
    func malformedTimestamps(_ text: String) {
        #expect(RFC3339Timestamp.parse(text) == nil)
    }
}
