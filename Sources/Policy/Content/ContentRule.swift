/// A rule about what the repositories it names may hold (`content:`), as opposed to who may
/// pull, push and delete (`rules:`).
///
/// The first rule whose repository pattern matches applies; a repository no rule matches has
/// no content rule. Patterns are the rule language's globs and `/regex/`.
public struct ContentRule: Sendable, CustomStringConvertible {
    /// Where the rule stands in `content:` (0-based), for explanations.
    public var index: Int
    /// The repositories the rule applies to.
    public var repositories: [Pattern]
    /// The tags that, once pushed, never point to another manifest and are never deleted.
    public var immutableTags: [Pattern]
    /// The keys one of which must have signed a manifest for it to be pulled; none: not checked.
    public var signedBy: [SignatureKey] {
        didSet { signedByFingerprints = Self.fingerprints(signedBy) }
    }
    /// The fingerprints of ``signedBy``, joined: what a remembered verification is keyed by.
    public private(set) var signedByFingerprints: String

    /// Creates a rule from the patterns as written.
    /// - Throws: ``PolicyError/Code/invalidRule`` for a pattern that does not compile, or a rule
    ///   without repositories.
    public init(index: Int, repositories: [String], immutableTags: [String], signedBy: [SignatureKey] = []) throws(PolicyError) {
        guard !repositories.isEmpty else { throw PolicyError(.invalidRule, "a content rule needs at least one repository pattern") }
        self.index = index
        self.signedBy = signedBy
        self.signedByFingerprints = Self.fingerprints(signedBy)
        do {
            self.repositories = try repositories.map { try Pattern($0) }
            self.immutableTags = try immutableTags.map { try Pattern($0) }
        } catch let error as PolicyError {
            throw error
        } catch {
            throw PolicyError(.invalidRule, "\(error)")
        }
    }

    private static func fingerprints(_ keys: [SignatureKey]) -> String { keys.map(\.fingerprint).joined(separator: ",") }

    /// Whether the rule applies to `repository`.
    public func applies(to repository: String) -> Bool {
        repositories.contains { $0.matches(repository) }
    }

    /// The immutable-tag pattern that protects `tag`, if one does. Attachment tags
    /// (``isAttachmentTag(_:)``) are never protected.
    public func protection(of tag: String) -> Pattern? {
        guard !Self.isAttachmentTag(tag) else { return nil }
        return immutableTags.first { $0.matches(tag) }
    }

    /// Whether `tag` is one that tools attach to a manifest and rewrite as they add to it:
    /// cosign's `sha256-<hex>.sig`, `.att` and `.sbom`, and the OCI referrers fallback
    /// `sha256-<hex>` (an index that grows with each referrer). `immutable_tags: ["*"]` must
    /// not stop a second signature.
    public static func isAttachmentTag(_ tag: String) -> Bool {
        guard tag.hasPrefix("sha256-") else { return false }
        var hex = tag.dropFirst("sha256-".count)
        for suffix in [".sig", ".att", ".sbom"] where hex.hasSuffix(suffix) {
            hex = hex.dropLast(suffix.count)
            break
        }
        return hex.count == 64 && hex.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
    }

    /// `content[0]`: where the rule stands.
    public var name: String { "content[\(index)]" }

    /// `content[0] (repositories: release/**; immutable_tags: v*, /^[0-9.]+$/)`.
    public var description: String {
        var parts = ["repositories: \(repositories.map(\.source).joined(separator: ", "))"]
        if !immutableTags.isEmpty { parts.append("immutable_tags: \(immutableTags.map(\.source).joined(separator: ", "))") }
        if !signedBy.isEmpty { parts.append("signed_by: \(signedBy.map(\.description).joined(separator: ", "))") }
        return "\(name) (\(parts.joined(separator: "; ")))"
    }
}
