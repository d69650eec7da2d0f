import Policy

/// Fuzzes the scope grammar: every scope that parses prints to a form that parses back to the
/// same scope, and a repository scope always names a valid repository.
enum ScopeHarness {
    static func run(_ input: [UInt8]) throws(FuzzFinding) {
        let text = String(decoding: input, as: UTF8.self)
        let parameters = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let scopes = try? Scope.parseAll(parameters) else { return }
        for scope in scopes {
            let printed = scope.description
            guard let reparsed = try? Scope(parsing: printed) else {
                throw FuzzFinding("scope", "\(String(reflecting: printed)) was printed from a parsed scope but does not parse")
            }
            guard reparsed == scope else {
                throw FuzzFinding("scope", "\(String(reflecting: printed)) parses to \(reparsed), not \(scope)")
            }
            if scope.resource.type == Resource.repositoryType {
                guard (try? RepositoryName(scope.resource.name, allowingHost: true)) != nil else {
                    throw FuzzFinding("scope", "repository scope names an invalid repository \(String(reflecting: scope.resource.name))")
                }
            }
        }
        guard Set(scopes.map(\.resource)).count == scopes.count else {
            throw FuzzFinding("scope", "parseAll returned one resource twice in \(scopes)")
        }
    }
}
