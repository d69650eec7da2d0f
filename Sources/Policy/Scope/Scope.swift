/// One resource scope of the Docker token protocol: `type:name:actions`.
///
/// The grammar is `resourcetype[(class)] ":" resourcename ":" action[,action]*`. The type ends at
/// the first `:` and the actions start after the last one, so a name that carries a registry
/// host with a port (`repository:localhost:5000/team/app:pull`) still has three fields. The
/// deprecated `(class)` suffix of the type is accepted and dropped.
public struct Scope: Hashable, Sendable, CustomStringConvertible {
    /// What the scope is about.
    public var resource: Resource
    /// What may be done to it.
    public var actions: ActionSet

    /// Creates a scope from its parts.
    public init(resource: Resource, actions: ActionSet) {
        self.resource = resource
        self.actions = actions
    }

    /// Parses one scope.
    /// - Throws: ``PolicyError`` with code ``PolicyError/Code/invalidScope``, whose message quotes
    ///   the scope and names the part that is wrong.
    public init(parsing text: some StringProtocol) throws {
        let text = String(text)
        guard let firstColon = text.firstIndex(of: ":"), let lastColon = text.lastIndex(of: ":"),
            firstColon != lastColon
        else {
            throw PolicyError(.invalidScope, "scope \"\(text)\" is not of the form type:name:actions")
        }
        var type = text[..<firstColon]
        let name = text[text.index(after: firstColon)..<lastColon]
        let actionList = text[text.index(after: lastColon)...]

        if let open = type.firstIndex(of: "(") {
            guard type.last == ")", open != type.startIndex else {
                throw PolicyError(.invalidScope, "scope \"\(text)\" has a malformed resource type \"\(type)\"")
            }
            type = type[..<open]
        }
        guard !type.isEmpty, type.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
            throw PolicyError(.invalidScope, "scope \"\(text)\" has an invalid resource type \"\(type)\"")
        }
        guard !name.isEmpty else {
            throw PolicyError(.invalidScope, "scope \"\(text)\" has an empty resource name")
        }
        if type == Resource.repositoryType {
            do {
                _ = try RepositoryName(name, allowingHost: true)
            } catch let error as PolicyError {
                throw PolicyError(.invalidScope, "scope \"\(text)\": \(error.message)", underlying: error)
            }
        } else {
            guard !name.contains(where: { $0 == " " || $0 == "," }) else {
                throw PolicyError(.invalidScope, "scope \"\(text)\" has an invalid resource name \"\(name)\"")
            }
        }
        do {
            self.actions = try ActionSet(list: actionList)
        } catch let error as PolicyError {
            throw PolicyError(.invalidScope, "scope \"\(text)\": \(error.message)", underlying: error)
        }
        self.resource = Resource(type: String(type), name: String(name))
    }

    /// Parses every scope in a list of `scope` parameters, each of which may itself hold several
    /// scopes separated by spaces. Scopes on the same resource are merged.
    /// - Throws: ``PolicyError/Code/invalidScope`` for the first scope that does not parse.
    public static func parseAll(_ parameters: [String]) throws -> [Scope] {
        var merged: [Resource: ActionSet] = [:]
        var order: [Resource] = []
        for parameter in parameters {
            for item in parameter.split(separator: " ", omittingEmptySubsequences: true) {
                let scope = try Scope(parsing: item)
                if merged[scope.resource] == nil { order.append(scope.resource) }
                merged[scope.resource, default: []].formUnion(scope.actions)
            }
        }
        return order.map { Scope(resource: $0, actions: merged[$0]!) }
    }

    /// The scope in its wire form, with actions in canonical order.
    public var description: String { "\(resource.type):\(resource.name):\(actions)" }
}
