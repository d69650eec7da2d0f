import Policy
import Testing

@Suite("Content rules: which requests an immutable tag concerns")
struct ContentRuleTests {
    let rules = ContentRules([
        try! ContentRule(index: 0, repositories: ["release/**"], immutableTags: ["v*", "/^[0-9]+(\\.[0-9]+)*$/"]),
        try! ContentRule(index: 1, repositories: ["prod/**"], immutableTags: ["*"]),
        try! ContentRule(index: 2, repositories: ["**"], immutableTags: []),
    ])
    let digest = "sha256:" + String(repeating: "ab", count: 32)

    func check(_ method: String, _ path: String) throws -> ContentCheck? {
        rules.check(method: method, route: try Route(path: path))
    }

    @Test("a push to a protected tag needs the registry's answer; a push to another tag, by digest, or elsewhere needs nothing")
    func pushes() throws {
        guard case .tagPush(let tag) = try check("PUT", "/v2/release/app/manifests/v1.2") else { Issue.record("no check"); return }
        #expect(tag.tag == "v1.2" && tag.repository.value == "release/app" && tag.rule.index == 0 && tag.pattern.source == "v*")
        guard case .tagPush(let numeric) = try check("PUT", "/v2/release/app/manifests/1.2.3") else { Issue.record("no check"); return }
        #expect(numeric.pattern.source.hasPrefix("/"))
        #expect(try check("PUT", "/v2/release/app/manifests/latest") == nil)
        #expect(try check("PUT", "/v2/release/app/manifests/\(digest)") == nil)
        #expect(try check("PUT", "/v2/scratch/app/manifests/v1") == nil)
        #expect(try check("GET", "/v2/release/app/manifests/v1") == nil)
        #expect(try check("PUT", "/v2/release/app/blobs/uploads/some-id") == nil)
    }

    @Test("a tag delete of a protected tag is refused outright; a manifest delete by digest asks which tags point to it")
    func deletes() throws {
        guard case .refused(.tagDelete(let tag)) = try check("DELETE", "/v2/prod/api/manifests/stable") else { Issue.record("not refused"); return }
        #expect(tag.rule.index == 1)
        guard case .manifestDelete(let repository, let target, let rule) = try check("DELETE", "/v2/prod/api/manifests/\(digest)") else {
            Issue.record("no check")
            return
        }
        #expect(repository.value == "prod/api" && target == digest && rule.index == 1)
        // The first matching rule decides: `**` protects nothing.
        #expect(try check("DELETE", "/v2/other/manifests/\(digest)") == nil)
    }

    @Test("signature and referrer attachment tags are never protected, even by `*`")
    func attachmentTags() throws {
        let hex = String(repeating: "0f", count: 32)
        for tag in ["sha256-\(hex).sig", "sha256-\(hex).att", "sha256-\(hex).sbom", "sha256-\(hex)"] {
            #expect(ContentRule.isAttachmentTag(tag))
            #expect(try check("PUT", "/v2/prod/api/manifests/\(tag)") == nil)
        }
        #expect(!ContentRule.isAttachmentTag("sha256-short.sig"))
        #expect(try check("PUT", "/v2/prod/api/manifests/sha256-short.sig") != nil)
    }

    @Test("the refusal of a moved tag names the tag, its digest, the pushed digest and the rule; the same digest is no move")
    func verdicts() throws {
        guard case .tagPush(let tag) = try check("PUT", "/v2/release/app/manifests/v1") else { Issue.record("no check"); return }
        #expect(tag.verdict(pushed: digest, current: nil) == nil)
        #expect(tag.verdict(pushed: digest, current: digest) == nil)
        let other = "sha256:" + String(repeating: "cd", count: 32)
        let refusal = try #require(tag.verdict(pushed: other, current: digest))
        #expect(refusal.description == "tag v1 is immutable (content[0] immutable_tags v*) and points to \(digest) in release/app; the pushed manifest is \(other): push it under a new tag")
    }

    @Test("the manifest digest is sha256 of the exact bytes")
    func manifestDigest() {
        #expect(ManifestDigest.sha256(Array("abc".utf8)) == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("a retention plan keeps every image an immutable tag points to, with the rule as the reason, and the other tags of that image with it")
    func pruneKeepsImmutableImages() throws {
        let rule = try ContentRule(index: 0, repositories: ["release/**"], immutableTags: ["v*"])
        let tags = [
            TaggedManifest(tag: "v1", digest: "sha256:1", created: 100),
            TaggedManifest(tag: "old", digest: "sha256:1", created: 100),
            TaggedManifest(tag: "nightly", digest: "sha256:2", created: 200),
        ]
        let plan = RetentionPlan(tags: tags, criteria: RetentionCriteria(keepLast: 0), now: 1000, content: rule)
        #expect(plan.deletions.map(\.digest) == ["sha256:2"])
        let reasons = Dictionary(uniqueKeysWithValues: plan.decisions.map { ($0.manifest.tag, $0.keptBecause?.description) })
        #expect(reasons["v1"] == "immutable tag (content[0] immutable_tags v*)")
        #expect(reasons["old"] == "digest also tagged v1, which is kept")
        #expect(reasons["nightly"] == .some(nil))
        // Without the rule the same criteria delete both images.
        #expect(RetentionPlan(tags: tags, criteria: RetentionCriteria(keepLast: 0), now: 1000).deletions.count == 2)
    }
}
