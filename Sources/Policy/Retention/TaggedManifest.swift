/// One tag of a repository as a prune sees it: the manifest it points to and when that image
/// was created.
public struct TaggedManifest: Sendable, Equatable {
    /// The tag.
    public var tag: String
    /// The `sha256:…` digest of the manifest the tag points to.
    public var digest: String
    /// When the image was created, in seconds since 1970; `nil` when unknown. Values at or before
    /// 1970-01-01T00:00:00Z (what reproducible builds write) count as unknown.
    public var created: Double?
    /// Manifests this manifest references by digest (the entries of an index or manifest list),
    /// which must survive as long as it is kept.
    public var references: [String]

    /// Creates a record.
    /// - Parameters:
    ///   - tag: the tag.
    ///   - digest: the manifest digest.
    ///   - created: the image's creation time in seconds since 1970, if known.
    ///   - references: digests of the manifests an index references.
    public init(tag: String, digest: String, created: Double?, references: [String] = []) {
        self.tag = tag
        self.digest = digest
        self.created = created.flatMap { $0 > 0 ? $0 : nil }
        self.references = references
    }
}
