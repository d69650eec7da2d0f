/// One entry of the ordered rule list.
///
/// A rule matches a requested scope when the resource type is equal, the resource name
/// matches ``name`` (after placeholder expansion), the caller's account matches ``account``
/// and every label pattern matches one of the caller's values for that label. The first
/// matching rule decides: the caller gets the requested actions that ``actions`` allows.
public struct Rule: Sendable, CustomStringConvertible {
    /// The account pattern that only callers without credentials match.
    public static let anonymousAccount = "anonymous"

    /// The resource type, `repository` unless given.
    public var type: String
    /// The resource-name pattern.
    public var name: NameTemplate
    /// The account pattern; `anonymous` matches only callers without credentials, and any other
    /// pattern (`*` included) matches only callers with credentials.
    public var account: Pattern
    /// Label patterns, all of which must match.
    public var labels: [String: Pattern]
    /// What the rule allows: `[]` denies, ``ActionSet/all`` grants everything.
    public var actions: ActionSet

    /// Builds a rule from its written form.
    /// - Parameters:
    ///   - type: the resource type (`repository` or `registry`).
    ///   - name: glob or `/regex/`, with `${account}` and `${labels:NAME}` placeholders.
    ///   - account: glob or `/regex/`, or `anonymous`.
    ///   - labels: label name → glob or `/regex/`.
    ///   - actions: action words; `*` grants all.
    /// - Throws: ``PolicyError/Code/invalidRule`` naming the part that is wrong.
    public init(
        type: String = Resource.repositoryType,
        name: String,
        account: String = "*",
        labels: [String: String] = [:],
        actions: [String]
    ) throws {
        guard !type.isEmpty else { throw PolicyError(.invalidRule, "empty resource type") }
        self.type = type
        self.name = try NameTemplate(name)
        self.account = try Pattern(account)
        self.labels = try labels.mapValues { try Pattern($0) }
        var set: ActionSet = []
        for word in actions {
            do {
                set.formUnion(try ActionSet(action: word))
            } catch let error as PolicyError {
                throw PolicyError(.invalidRule, error.message, underlying: error)
            }
        }
        self.actions = set
    }

    /// Whether the rule applies to `resource` requested by `identity`.
    public func matches(_ resource: Resource, for identity: Identity) -> Bool {
        guard resource.type == type else { return false }
        if account.source == Self.anonymousAccount {
            guard identity.kind == .anonymous else { return false }
        } else {
            // `*` alone (also the default) means every account, names with `/` included (an OIDC
            // account such as `ci:team-a/app`); elsewhere `*` stops at `/` as in names.
            guard identity.kind != .anonymous, account.source == "*" || account.matches(identity.account) else { return false }
        }
        for (label, pattern) in labels {
            guard let values = identity.labels[label], values.contains(where: pattern.matches) else { return false }
        }
        return name.matches(resource.name, for: identity)
    }

    public var description: String {
        var parts = ["account: \(account.source)", "type: \(type)", "name: \(name.source)"]
        if !labels.isEmpty {
            parts.append("labels: {" + labels.keys.sorted().map { "\($0): \(labels[$0]!.source)" }.joined(separator: ", ") + "}")
        }
        parts.append("actions: [\(actions.words.joined(separator: ", "))]")
        return "{" + parts.joined(separator: ", ") + "}"
    }
}
