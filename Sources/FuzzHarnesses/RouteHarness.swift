import Policy

/// Fuzzes the route mapping with a request line `METHOD path[?query]` (and an optional second
/// line, the content type): whatever it decides, a repository it authorizes against is the one
/// the path names verbatim, a valid name, and every scope it requires is on that repository or is
/// pull on the `from` repository of the query.
enum RouteHarness {
    static func run(_ input: [UInt8]) throws(FuzzFinding) {
        let text = String(decoding: input, as: UTF8.self)
        let lines = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        let requestLine = lines[0]
        let contentType = lines.count > 1 ? String(lines[1]) : nil
        let words = requestLine.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
        guard words.count == 2 else { return }
        let method = String(words[0])
        let target = words[1]
        let path: String
        let query: String?
        if let mark = target.firstIndex(of: "?") {
            path = String(target[..<mark])
            query = String(target[target.index(after: mark)...])
        } else {
            path = String(target)
            query = nil
        }

        let route: Route?
        do {
            route = try Route(path: path)
        } catch {
            route = nil
        }
        if let route, let repository = route.repository {
            guard path.hasPrefix("/v2/\(repository.value)/") else {
                throw FuzzFinding("route", "\(path) was routed to repository \(repository.value), which it does not name verbatim")
            }
            guard (try? RepositoryName(repository.value)) != nil else {
                throw FuzzFinding("route", "\(path) was routed to the invalid repository name \(repository.value)")
            }
        }

        let access = AccessMap.requiredAccess(method: method, path: path, query: query, contentType: contentType)
        switch access {
        case .rejected:
            return
        case .authenticated:
            guard path == "/v2/" || path == "/v2" else {
                throw FuzzFinding("route", "\(method) \(path) needs no scope, though it is not the base endpoint")
            }
        case .scopes(let scopes):
            guard !scopes.isEmpty else {
                throw FuzzFinding("route", "\(method) \(path) requires an empty list of scopes")
            }
            guard let route else {
                throw FuzzFinding("route", "\(method) \(path) is authorized though the path does not route")
            }
            for scope in scopes where scope.resource.type == Resource.repositoryType {
                guard (try? RepositoryName(scope.resource.name)) != nil else {
                    throw FuzzFinding("route", "\(method) \(path) requires a scope on the invalid name \(scope.resource.name)")
                }
                if scope.resource.name != route.repository?.value {
                    // distribution asks for pull on a `from` repository on every repository route
                    // (not only mounts): the only second repository, and only ever for pull.
                    guard let from = query.flatMap({ QueryParameters($0).first("from") }), from == scope.resource.name,
                        scope.actions == .pull
                    else {
                        throw FuzzFinding(
                            "route", "\(method) \(path) requires \(scope), which is neither on the path's repository nor pull on from")
                    }
                }
            }
            if scopes.isEmpty || scopes.allSatisfy({ $0.actions.isEmpty }) {
                throw FuzzFinding("route", "\(method) \(path) requires scopes without actions")
            }
        }
    }
}
