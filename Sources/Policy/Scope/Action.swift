/// The actions a token can grant on a resource, as a set.
///
/// The registry knows `pull`, `push` and `delete`; `*` grants every action, including ones that
/// only exist as `*` (the catalog is guarded by `registry:catalog:*`). A set that contains
/// ``wildcard`` therefore always contains the three named actions too, and prints as `*`.
public struct ActionSet: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Read a resource: GET and HEAD.
    public static let pull = ActionSet(rawValue: 1 << 0)
    /// Write a resource: POST, PUT and PATCH (which also need ``pull``).
    public static let push = ActionSet(rawValue: 1 << 1)
    /// Remove a manifest, tag or blob: DELETE.
    public static let delete = ActionSet(rawValue: 1 << 2)
    /// The literal `*` action. Never stands alone: see ``all``.
    public static let wildcard = ActionSet(rawValue: 1 << 3)
    /// Everything, written `*` on the wire.
    public static let all: ActionSet = [.pull, .push, .delete, .wildcard]

    /// Parses one action word.
    /// - Throws: ``PolicyError/Code/invalidAction`` for anything but `pull`, `push`, `delete`, `*`.
    public init(action word: some StringProtocol) throws {
        switch word {
        case "pull": self = .pull
        case "push": self = .push
        case "delete": self = .delete
        case "*": self = .all
        default:
            throw PolicyError(.invalidAction, "unknown action \"\(word)\" (expected pull, push, delete or *)")
        }
    }

    /// Parses a comma-separated action list such as `pull,push`.
    /// - Throws: ``PolicyError/Code/invalidAction`` naming the first unknown or empty action.
    public init(list: some StringProtocol) throws {
        var result: ActionSet = []
        for word in list.split(separator: ",", omittingEmptySubsequences: false) {
            guard !word.isEmpty else {
                throw PolicyError(.invalidAction, "empty action in \"\(list)\"")
            }
            result.formUnion(try ActionSet(action: word))
        }
        guard !result.isEmpty else {
            throw PolicyError(.invalidAction, "no action given")
        }
        self = result
    }

    /// The action words in canonical order, `["*"]` when every action is present.
    public var words: [String] {
        if self.contains(.wildcard) { return ["*"] }
        var words: [String] = []
        if self.contains(.pull) { words.append("pull") }
        if self.contains(.push) { words.append("push") }
        if self.contains(.delete) { words.append("delete") }
        return words
    }

    /// Whether this set grants every action in `required`.
    public func satisfies(_ required: ActionSet) -> Bool {
        self.isSuperset(of: required)
    }

    public var description: String { words.joined(separator: ",") }
}
