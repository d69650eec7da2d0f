/// The `content:` list: which rule applies to a repository, and what a request must have
/// checked against the registry before it may go there.
public struct ContentRules: Sendable {
    /// The rules in order.
    public var rules: [ContentRule]

    /// Creates the list.
    public init(_ rules: [ContentRule] = []) {
        self.rules = rules
    }

    /// Whether there are no rules (then nothing is ever checked).
    public var isEmpty: Bool { rules.isEmpty }

    /// The rule that applies to `repository`: the first whose repository pattern matches.
    public func rule(for repository: String) -> ContentRule? {
        rules.first { $0.applies(to: repository) }
    }

    /// One line on what `content:` says of `repository` (and of `tag`, when given), for
    /// `portcullis policy explain`.
    public func explain(repository: String, tag: String? = nil) -> String {
        guard let rule = rule(for: repository) else { return "content \(repository): no content rule applies" }
        var line = "content \(repository): \(rule)"
        if !rule.signedBy.isEmpty {
            line += "; manifests are pulled only when signed by one of its keys (accounts that may push excepted)"
        }
        if let tag {
            if ContentRule.isAttachmentTag(tag) {
                line += "; tag \(tag) is an attachment tag (signatures, referrers), never immutable"
            } else if let pattern = rule.protection(of: tag) {
                line += "; tag \(tag) is immutable (immutable_tags \(pattern.source)): its first push stays, deletes are refused"
            } else {
                line += "; tag \(tag) is not immutable"
            }
        }
        return line
    }

    /// What a request with `method` on `route` must have checked or be refused for, or `nil`
    /// when no content rule concerns it. Only manifest requests ever are: pushes and deletes
    /// (immutable tags), pulls (signatures; `callerMayPush` is asked then: an account that may
    /// push to the repository, the CI that pushes and signs, is not held to signatures).
    public func check(method: String, route: Route, callerMayPush: () -> Bool = { false }) -> ContentCheck? {
        guard !rules.isEmpty, case .manifest(let reference) = route.endpoint, let repository = route.repository,
            let rule = rule(for: repository.value)
        else { return nil }
        if method == "GET" || method == "HEAD" {
            // Signatures and referrer indexes are not signed themselves.
            guard !rule.signedBy.isEmpty, !ContentRule.isAttachmentTag(reference), !callerMayPush() else { return nil }
            return .signature(repository: repository, reference: reference, rule: rule)
        }
        guard method == "PUT" || method == "DELETE", !rule.immutableTags.isEmpty else { return nil }
        let isDigest = reference.contains(":")
        switch (method, isDigest) {
        case ("PUT", false):
            guard let pattern = rule.protection(of: reference) else { return nil }
            return .tagPush(ImmutableTag(repository: repository, tag: reference, rule: rule, pattern: pattern))
        case ("DELETE", false):
            guard let pattern = rule.protection(of: reference) else { return nil }
            return .refused(ContentRefusal.tagDelete(ImmutableTag(repository: repository, tag: reference, rule: rule, pattern: pattern)))
        case ("DELETE", true):
            return .manifestDelete(repository: repository, digest: reference, rule: rule)
        default:
            // A push by digest moves no tag.
            return nil
        }
    }
}

/// A tag a content rule keeps immutable, with the rule and the pattern that protect it.
public struct ImmutableTag: Sendable {
    public var repository: RepositoryName
    public var tag: String
    public var rule: ContentRule
    public var pattern: Pattern

    public init(repository: RepositoryName, tag: String, rule: ContentRule, pattern: Pattern) {
        self.repository = repository
        self.tag = tag
        self.rule = rule
        self.pattern = pattern
    }

    /// `tag v1.2.3 is immutable (content[0] immutable_tags v*)`.
    public var reason: String { "tag \(tag) is immutable (\(rule.name) immutable_tags \(pattern.source))" }
}

/// What a content rule needs to know from the registry before a request goes there.
public enum ContentCheck: Sendable {
    /// A manifest push to a protected tag: it goes through only when the tag does not exist
    /// yet or already points to the pushed manifest (``ImmutableTag/verdict(pushed:current:)``).
    case tagPush(ImmutableTag)
    /// A manifest delete by digest in a repository with protected tags: refused when one of
    /// them points to the digest (``ContentRefusal/taggedManifestDelete(_:digest:)``).
    case manifestDelete(repository: RepositoryName, digest: String, rule: ContentRule)
    /// Refused without asking the registry.
    case refused(ContentRefusal)
    /// A manifest pull in a repository with `signed_by`: served only when the manifest (the one
    /// a tag points to, resolved first) is signed by one of the rule's keys.
    case signature(repository: RepositoryName, reference: String, rule: ContentRule)
}

extension ImmutableTag {
    /// Whether a push of the manifest with digest `pushed` may go to the registry, given the
    /// digest the tag points to now (`nil`: the tag does not exist yet).
    public func verdict(pushed: String, current: String?) -> ContentRefusal? {
        guard let current, current != pushed else { return nil }
        return .tagMoved(self, current: current, pushed: pushed)
    }
}

/// Why a content rule refuses a request; the message names the tag, its digest and the rule.
public enum ContentRefusal: Sendable, Error, CustomStringConvertible {
    /// A push would move a protected tag to another manifest.
    case tagMoved(ImmutableTag, current: String, pushed: String)
    /// A protected tag would be deleted.
    case tagDelete(ImmutableTag)
    /// A manifest a protected tag points to would be deleted.
    case taggedManifestDelete(ImmutableTag, digest: String)
    /// A manifest pulled from a repository with `signed_by` is not signed by one of its keys.
    case notSigned(repository: RepositoryName, digest: String, rule: ContentRule, verdict: SignatureVerdict)

    public var description: String {
        switch self {
        case .tagMoved(let tag, let current, let pushed):
            "\(tag.reason) and points to \(current) in \(tag.repository); the pushed manifest is \(pushed): push it under a new tag"
        case .tagDelete(let tag):
            "\(tag.reason) in \(tag.repository): it cannot be deleted"
        case .taggedManifestDelete(let tag, let digest):
            "manifest \(digest) in \(tag.repository) cannot be deleted: \(tag.reason) and points to it"
        case .notSigned(let repository, let digest, let rule, let verdict):
            "manifest \(digest) in \(repository) is not served: \(verdict) (\(rule.name) signed_by \(rule.signedBy.map(\.name).joined(separator: ", ")))"
        }
    }
}
