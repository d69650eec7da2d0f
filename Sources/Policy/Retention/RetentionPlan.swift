/// What a prune removes from one repository, decided without any I/O.
///
/// The registry deletes manifests by digest, and deleting a digest removes every tag that points
/// to it (distribution 2.8 cannot delete a tag alone). So the plan works on images: a digest is
/// deleted only when every tag pointing to it is selected; a digest that a kept tag points to,
/// or that a kept index references, is never deleted, and its selected tags are kept with the
/// reason.
///
/// Images are ordered newest first by creation time; an image whose creation time is unknown
/// counts as newer than every dated one (it is kept by ``RetentionCriteria/keepLast`` first and
/// never selected by ``RetentionCriteria/olderThan``). Ties are broken by digest, so the plan is
/// deterministic.
public struct RetentionPlan: Sendable {
    /// Why a tag stays.
    public enum Reason: Sendable, Equatable, CustomStringConvertible {
        /// A content rule keeps the tag immutable (the rule's name and the pattern as written).
        case immutable(rule: String, pattern: String)
        /// ``RetentionCriteria/tagPattern`` does not match it.
        case notMatched
        /// An ``RetentionCriteria/exclude`` pattern matches it (the pattern as written).
        case excluded(String)
        /// Its image is the n-th newest candidate (1-based) and ``RetentionCriteria/keepLast`` keeps it.
        case newest(Int)
        /// Its image was created after the ``RetentionCriteria/olderThan`` cutoff.
        case newerThanCutoff
        /// Its image's creation time is unknown, so ``RetentionCriteria/olderThan`` never selects it.
        case unknownCreationTime
        /// Another tag that is kept points to the same digest (those tags).
        case digestShared(with: [String])
        /// A kept index or manifest list references its digest (the index's tags).
        case referencedByKeptIndex([String])

        public var description: String {
            switch self {
            case .immutable(let rule, let pattern): "immutable tag (\(rule) immutable_tags \(pattern))"
            case .notMatched: "does not match --tag-pattern"
            case .excluded(let pattern): "excluded by \(pattern)"
            case .newest(let rank): "newest image #\(rank)"
            case .newerThanCutoff: "newer than the --older-than cutoff"
            case .unknownCreationTime: "creation time unknown"
            case .digestShared(let tags): "digest also tagged \(tags.joined(separator: ", ")), which is kept"
            case .referencedByKeptIndex(let tags): "referenced by the kept index \(tags.joined(separator: ", "))"
            }
        }
    }

    /// The verdict on one tag.
    public struct Decision: Sendable, Equatable {
        /// The tag and its manifest.
        public var manifest: TaggedManifest
        /// `nil` when the tag goes (with its digest), otherwise why it stays.
        public var keptBecause: Reason?
    }

    /// One manifest to delete, with every tag that goes with it.
    public struct Deletion: Sendable, Equatable {
        /// The manifest digest.
        public var digest: String
        /// The tags pointing to it, sorted.
        public var tags: [String]
        /// The image's creation time, seconds since 1970, if known.
        public var created: Double?
    }

    /// One decision per tag, newest image first.
    public private(set) var decisions: [Decision]
    /// The manifests to delete, newest first.
    public private(set) var deletions: [Deletion]

    /// The tags that stay.
    public var keptTags: [String] { decisions.filter { $0.keptBecause != nil }.map(\.manifest.tag) }
    /// The tags that go.
    public var deletedTags: [String] { deletions.flatMap(\.tags) }

    /// Decides which manifests of one repository to delete.
    /// - Parameters:
    ///   - tags: every tag of the repository with its manifest.
    ///   - criteria: what may be removed.
    ///   - now: the current time in seconds since 1970, for ``RetentionCriteria/olderThan``.
    ///   - content: the content rule of the repository: the tags it keeps immutable are kept.
    public init(tags: [TaggedManifest], criteria: RetentionCriteria, now: Double, content: ContentRule? = nil) {
        // Images (digests) newest first; unknown creation times count as newest.
        let byDigest = Dictionary(grouping: tags, by: \.digest)
        let images = byDigest.keys.sorted { left, right in
            let a = byDigest[left]![0].created
            let b = byDigest[right]![0].created
            switch (a, b) {
            case (nil, nil): return left < right
            case (nil, _): return true
            case (_, nil): return false
            case (let a?, let b?): return a != b ? a > b : left < right
            }
        }

        // First pass: the criteria, tag by tag (tags of one image share the image's rank and age).
        var reasons: [String: Reason] = [:]
        var candidateRank = 0
        for digest in images {
            let group = byDigest[digest]!
            let isCandidateImage = group.contains { criteria.isCandidate($0.tag) }
            if isCandidateImage { candidateRank += 1 }
            for entry in group {
                if let content, let pattern = content.protection(of: entry.tag) {
                    reasons[entry.tag] = .immutable(rule: content.name, pattern: pattern.source)
                } else if let pattern = criteria.tagPattern, !pattern.matches(entry.tag) {
                    reasons[entry.tag] = .notMatched
                } else if let pattern = criteria.exclude.first(where: { $0.matches(entry.tag) }) {
                    reasons[entry.tag] = .excluded(pattern.source)
                } else if let keep = criteria.keepLast, candidateRank <= keep {
                    reasons[entry.tag] = .newest(candidateRank)
                } else if let age = criteria.olderThan {
                    if let created = entry.created {
                        if created > now - age { reasons[entry.tag] = .newerThanCutoff }
                    } else {
                        reasons[entry.tag] = .unknownCreationTime
                    }
                }
            }
        }

        // Then protect digests that kept tags point to, and manifests that kept indexes
        // reference, until nothing changes (an index may reference another index).
        var changed = true
        while changed {
            changed = false
            let keptTags = tags.filter { reasons[$0.tag] != nil }
            var keptByDigest: [String: [String]] = [:]
            var referencedBy: [String: [String]] = [:]
            for entry in keptTags {
                keptByDigest[entry.digest, default: []].append(entry.tag)
                for reference in entry.references { referencedBy[reference, default: []].append(entry.tag) }
            }
            for entry in tags where reasons[entry.tag] == nil {
                if let others = keptByDigest[entry.digest] {
                    reasons[entry.tag] = .digestShared(with: others.sorted())
                    changed = true
                } else if let indexes = referencedBy[entry.digest] {
                    reasons[entry.tag] = .referencedByKeptIndex(indexes.sorted())
                    changed = true
                }
            }
        }

        var decisions: [Decision] = []
        var deletions: [Deletion] = []
        for digest in images {
            let group = byDigest[digest]!.sorted { $0.tag < $1.tag }
            for entry in group { decisions.append(Decision(manifest: entry, keptBecause: reasons[entry.tag])) }
            if group.allSatisfy({ reasons[$0.tag] == nil }) {
                deletions.append(Deletion(digest: digest, tags: group.map(\.tag), created: group[0].created))
            }
        }
        self.decisions = decisions
        self.deletions = deletions
    }
}
