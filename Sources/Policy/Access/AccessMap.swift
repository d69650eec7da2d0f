import Foundation

/// Maps a `/v2/` request to the access it requires, exactly as distribution's access records do.
///
/// GET and HEAD need `pull`; POST, PUT and PATCH need `pull` and `push`; DELETE needs `delete`;
/// a `from` parameter (a blob mount, `POST …/blobs/uploads/?mount=…&from=other`) also needs
/// `pull` on `other`, on every repository route as in distribution;
/// `/v2/_catalog` needs `registry:catalog:*`; `/v2/` needs only a valid identity. Unlike
/// distribution, every method an endpoint does not serve is refused here, so an unmapped
/// request can never slip through with an empty access list.
public enum AccessMap {
    /// The access a request requires.
    /// - Parameters:
    ///   - method: The HTTP method, upper case.
    ///   - path: The request path without the query string, exactly as received.
    ///   - query: The raw query string without the leading `?`, if any.
    ///   - contentType: The request's `Content-Type`. distribution reads `from` out of form
    ///     bodies too (Go's `FormValue`), which a proxy cannot see before forwarding; such
    ///     bodies are never sent by registry clients, so they are refused.
    public static func requiredAccess(method: String, path: String, query: String?, contentType: String? = nil) -> RequiredAccess {
        let route: Route
        do {
            route = try Route(path: path)
        } catch {
            return .rejected(error)
        }
        if let contentType, ["POST", "PUT", "PATCH"].contains(method) {
            let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            if mediaType == "application/x-www-form-urlencoded" || mediaType == "multipart/form-data" {
                return .rejected(
                    RouteRejection(.badRequest, "\(mediaType) bodies are refused: the registry would read parameters such as from out of them"))
            }
        }
        return requiredAccess(method: method, route: route, query: query)
    }

    /// The access a request to an already parsed route requires.
    public static func requiredAccess(method: String, route: Route, query: String?) -> RequiredAccess {
        let allowed: Set<String>
        switch route.endpoint {
        case .base, .catalog, .tags, .referrers:
            allowed = ["GET", "HEAD"]
        case .manifest:
            allowed = ["GET", "HEAD", "PUT", "DELETE"]
        case .blob:
            allowed = ["GET", "HEAD", "DELETE"]
        case .uploadStart:
            allowed = ["POST"]
        case .upload:
            allowed = ["GET", "HEAD", "PATCH", "PUT", "DELETE"]
        }
        guard allowed.contains(method) else {
            return .rejected(RouteRejection(.methodNotAllowed, "\(method) is not served by the \(route.endpoint.template) endpoint"))
        }
        let actions: ActionSet
        switch method {
        case "GET", "HEAD": actions = .pull
        case "POST", "PUT", "PATCH": actions = [.pull, .push]
        case "DELETE": actions = .delete
        default:
            return .rejected(RouteRejection(.methodNotAllowed, "\(method) is not a registry method"))
        }
        switch route.endpoint {
        case .base:
            return .authenticated
        case .catalog:
            return .scopes([Scope(resource: .catalog, actions: .all)])
        case .manifest, .blob, .upload, .tags, .referrers, .uploadStart:
            guard let repository = route.repository else {
                return .rejected(RouteRejection(.notFound, "route without repository"))
            }
            var scopes = [Scope(resource: .repository(repository), actions: actions)]
            // distribution asks for pull on `from` on every repository route, not only mounts.
            let parameters = QueryParameters(query ?? "")
            let sources = parameters.values("from")
            guard sources.count <= 1, parameters.values("mount").count <= 1 else {
                return .rejected(RouteRejection(.badRequest, "repeated mount or from parameter"))
            }
            if let from = sources.first, !from.isEmpty {
                guard let source = try? RepositoryName(from) else {
                    return .rejected(RouteRejection(.badRequest, "mount source \"\(from)\" is not a valid repository name"))
                }
                if source == repository {
                    scopes[0].actions.formUnion(.pull)
                } else {
                    scopes.append(Scope(resource: .repository(source), actions: .pull))
                }
            }
            return .scopes(scopes)
        }
    }
}
