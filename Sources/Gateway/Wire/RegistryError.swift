import NIOHTTP1

/// A registry API error as Portcullis answers it: its code in the distribution API's vocabulary
/// and the HTTP status it goes with, registered here once (as distribution's `errcode`
/// registers its descriptors) instead of a string and a status at each site.
///
/// A code answered with more than one status is registered once per use, each entry saying when.
struct RegistryError: Sendable, Equatable, CustomStringConvertible {
    /// The `code` member of the error body.
    let code: String
    /// The status of the response.
    let status: HTTPResponseStatus

    private init(_ code: String, _ status: HTTPResponseStatus) {
        self.code = code
        self.status = status
    }

    var description: String { "\(code) (\(status.code))" }

    /// Authentication is required, or the presented credential does not grant the access: 401 with a challenge.
    static let unauthorized = RegistryError("UNAUTHORIZED", .unauthorized)
    /// The caller is known and authorized, and a rule about the content refuses the request.
    static let denied = RegistryError("DENIED", .forbidden)
    /// Too many failed authentications: 429 with `Retry-After`.
    static let tooManyRequests = RegistryError("TOOMANYREQUESTS", .tooManyRequests)
    /// Something Portcullis or a service it needs cannot do right now: 503.
    static let unavailable = RegistryError("UNAVAILABLE", .serviceUnavailable)
    /// The registry answered, but not with what Portcullis needed: 502.
    static let upstreamFailed = RegistryError("UNAVAILABLE", .badGateway)
    /// The registry did not answer within `timeouts.upstream_response`: 504.
    static let upstreamTimedOut = RegistryError("UNAVAILABLE", .gatewayTimeout)
    /// A method the endpoint does not serve: 405.
    static let unsupportedMethod = RegistryError("UNSUPPORTED", .methodNotAllowed)
    /// A request Portcullis cannot serve as sent (bad parameters, malformed HTTP): 400. The HTTP
    /// layer's refusals (``HTTPProtocolErrorHandler``) keep this code with the status HTTP has
    /// for the fault (431, 413, 501…).
    static let unsupportedRequest = RegistryError("UNSUPPORTED", .badRequest)
    /// A repository name the API grammar does not allow: 400.
    static let nameInvalid = RegistryError("NAME_INVALID", .badRequest)
    /// A `/v2/` path that is no registry route: 404.
    static let routeUnknown = RegistryError("NAME_INVALID", .notFound)
    /// A repository, or an endpoint outside `/v2/`, that does not exist: 404.
    static let nameUnknown = RegistryError("NAME_UNKNOWN", .notFound)
    /// A digest that is not one: 400.
    static let digestInvalid = RegistryError("DIGEST_INVALID", .badRequest)
    /// A manifest Portcullis cannot accept as sent: 400.
    static let manifestInvalid = RegistryError("MANIFEST_INVALID", .badRequest)
    /// Portcullis failed: 500.
    static let unknown = RegistryError("UNKNOWN", .internalServerError)
}
