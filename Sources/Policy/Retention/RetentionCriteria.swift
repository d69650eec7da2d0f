/// Which tags of a repository a prune may remove, as given on `portcullis prune`'s command line.
///
/// Tags matching ``tagPattern`` (every tag when `nil`) and no ``exclude`` pattern are the
/// candidates; the others are always kept. Candidates are grouped into images (one manifest
/// digest each) and an image is removed only when every given criterion selects it: it is not
/// among the ``keepLast`` newest candidate images, and it was created more than ``olderThan``
/// seconds ago. With neither criterion every candidate image is removed.
public struct RetentionCriteria: Sendable {
    /// Keep this many of the newest candidate images (counted by manifest digest, not by tag).
    public var keepLast: Int?
    /// Remove only images created more than this many seconds before `now`.
    public var olderThan: Double?
    /// The tags that may be removed; `nil` means every tag.
    public var tagPattern: Pattern?
    /// Tags that are always kept, even when ``tagPattern`` matches them.
    public var exclude: [Pattern]

    /// Creates criteria.
    /// - Parameters:
    ///   - keepLast: keep this many of the newest candidate images.
    ///   - olderThan: remove only images older than this many seconds.
    ///   - tagPattern: the tags that may be removed (glob or `/regex/`); `nil` for every tag.
    ///   - exclude: tags that are always kept.
    public init(keepLast: Int? = nil, olderThan: Double? = nil, tagPattern: Pattern? = nil, exclude: [Pattern] = []) {
        self.keepLast = keepLast
        self.olderThan = olderThan
        self.tagPattern = tagPattern
        self.exclude = exclude
    }

    /// Whether `tag` may be removed at all.
    public func isCandidate(_ tag: String) -> Bool {
        (tagPattern?.matches(tag) ?? true) && !exclude.contains { $0.matches(tag) }
    }
}
