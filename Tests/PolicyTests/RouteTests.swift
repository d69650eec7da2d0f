import Policy
import Testing

private let digest = "sha256:" + String(repeating: "ab", count: 32)
private let otherDigest = "sha512:" + String(repeating: "0f", count: 64)
private let uploadID = "0b5f2c1e-9a47-4f5e-8f3c-2d6d1c7e4a10"

/// The expected outcome of a request, as written in the table.
enum ExpectedAccess: Sendable, CustomStringConvertible {
    case authenticated
    /// Scope strings, each parsed and compared as a `Scope`.
    case scopes([String])
    case rejected(RouteRejection.Kind)

    var description: String {
        switch self {
        case .authenticated: "authenticated"
        case .scopes(let scopes): scopes.joined(separator: " ")
        case .rejected(let kind): "rejected(\(kind))"
        }
    }
}

struct RouteCase: Sendable, CustomTestStringConvertible {
    var method: String
    var path: String
    var query: String?
    var expected: ExpectedAccess

    init(_ method: String, _ path: String, query: String? = nil, _ expected: ExpectedAccess) {
        self.method = method
        self.path = path
        self.query = query
        self.expected = expected
    }

    var testDescription: String {
        "\(method) \(path)\(query.map { "?" + $0 } ?? "") → \(expected)"
    }
}

@Suite("Route to required access")
struct RouteTests {
    static let acceptedCases: [RouteCase] = [
        // Base and catalog.
        RouteCase("GET", "/v2/", .authenticated),
        RouteCase("HEAD", "/v2/", .authenticated),
        RouteCase("GET", "/v2/_catalog", .scopes(["registry:catalog:*"])),
        RouteCase("HEAD", "/v2/_catalog", .scopes(["registry:catalog:*"])),
        RouteCase("GET", "/v2/_catalog", query: "n=100&last=a/b", .scopes(["registry:catalog:*"])),
        // Manifests by tag.
        RouteCase("GET", "/v2/a/b/manifests/latest", .scopes(["repository:a/b:pull"])),
        RouteCase("HEAD", "/v2/a/b/manifests/latest", .scopes(["repository:a/b:pull"])),
        RouteCase("PUT", "/v2/a/b/manifests/latest", .scopes(["repository:a/b:pull,push"])),
        RouteCase("DELETE", "/v2/a/b/manifests/latest", .scopes(["repository:a/b:delete"])),
        RouteCase("GET", "/v2/app/manifests/v1.2.3-rc_1", .scopes(["repository:app:pull"])),
        RouteCase("GET", "/v2/app/manifests/" + String(repeating: "t", count: 128), .scopes(["repository:app:pull"])),
        // Manifests by digest.
        RouteCase("GET", "/v2/a/b/manifests/\(digest)", .scopes(["repository:a/b:pull"])),
        RouteCase("HEAD", "/v2/a/b/manifests/\(digest)", .scopes(["repository:a/b:pull"])),
        RouteCase("PUT", "/v2/a/b/manifests/\(digest)", .scopes(["repository:a/b:pull,push"])),
        RouteCase("DELETE", "/v2/a/b/manifests/\(digest)", .scopes(["repository:a/b:delete"])),
        // Blobs.
        RouteCase("GET", "/v2/a/b/blobs/\(digest)", .scopes(["repository:a/b:pull"])),
        RouteCase("HEAD", "/v2/a/b/blobs/\(digest)", .scopes(["repository:a/b:pull"])),
        RouteCase("DELETE", "/v2/a/b/blobs/\(digest)", .scopes(["repository:a/b:delete"])),
        RouteCase("GET", "/v2/a/b/blobs/\(otherDigest)", .scopes(["repository:a/b:pull"])),
        // Upload start and blob mount.
        RouteCase("POST", "/v2/a/b/blobs/uploads/", .scopes(["repository:a/b:pull,push"])),
        RouteCase("POST", "/v2/a/b/blobs/uploads/", query: "digest=\(digest)", .scopes(["repository:a/b:pull,push"])),
        RouteCase(
            "POST", "/v2/a/b/blobs/uploads/", query: "mount=\(digest)&from=c/d",
            .scopes(["repository:a/b:pull,push", "repository:c/d:pull"])),
        RouteCase(
            "POST", "/v2/a/b/blobs/uploads/", query: "from=c%2Fd&mount=\(digest)",
            .scopes(["repository:a/b:pull,push", "repository:c/d:pull"])),
        RouteCase("POST", "/v2/a/b/blobs/uploads/", query: "mount=\(digest)&from=a/b", .scopes(["repository:a/b:pull,push"])),
        RouteCase("POST", "/v2/a/b/blobs/uploads/", query: "mount=\(digest)&from=", .scopes(["repository:a/b:pull,push"])),
        // distribution asks for pull on `from` on every repository route.
        RouteCase("GET", "/v2/a/b/tags/list", query: "from=c/d", .scopes(["repository:a/b:pull", "repository:c/d:pull"])),
        RouteCase("DELETE", "/v2/a/b/manifests/latest", query: "from=a/b", .scopes(["repository:a/b:pull,delete"])),
        // Upload sessions.
        RouteCase("GET", "/v2/a/b/blobs/uploads/\(uploadID)", .scopes(["repository:a/b:pull"])),
        RouteCase("HEAD", "/v2/a/b/blobs/uploads/\(uploadID)", .scopes(["repository:a/b:pull"])),
        RouteCase("PATCH", "/v2/a/b/blobs/uploads/\(uploadID)", .scopes(["repository:a/b:pull,push"])),
        RouteCase("PUT", "/v2/a/b/blobs/uploads/\(uploadID)", query: "digest=\(digest)", .scopes(["repository:a/b:pull,push"])),
        RouteCase("DELETE", "/v2/a/b/blobs/uploads/\(uploadID)", .scopes(["repository:a/b:delete"])),
        RouteCase("PATCH", "/v2/a/b/blobs/uploads/abc_DEF.ghi=", .scopes(["repository:a/b:pull,push"])),
        // Tags and referrers.
        RouteCase("GET", "/v2/a/b/tags/list", .scopes(["repository:a/b:pull"])),
        RouteCase("HEAD", "/v2/a/b/tags/list", query: "n=10&last=v1", .scopes(["repository:a/b:pull"])),
        RouteCase("GET", "/v2/a/b/referrers/\(digest)", .scopes(["repository:a/b:pull"])),
        RouteCase("GET", "/v2/a/b/referrers/\(digest)", query: "artifactType=application%2Fx", .scopes(["repository:a/b:pull"])),
        // Names that contain route words resolve as the registry resolves them.
        RouteCase("GET", "/v2/a/manifests/tags/list", .scopes(["repository:a/manifests:pull"])),
        RouteCase("GET", "/v2/a/blobs/manifests/latest", .scopes(["repository:a/blobs:pull"])),
        RouteCase("GET", "/v2/tags/list/tags/list", .scopes(["repository:tags/list:pull"])),
        RouteCase("POST", "/v2/blobs/uploads/blobs/uploads/", .scopes(["repository:blobs/uploads:pull,push"])),
        RouteCase("GET", "/v2/a/blobs/uploads/blobs/\(digest)", .scopes(["repository:a/blobs/uploads:pull"])),
        RouteCase("GET", "/v2/v2/manifests/latest", .scopes(["repository:v2:pull"])),
        RouteCase("GET", "/v2/referrers/referrers/\(digest)", .scopes(["repository:referrers:pull"])),
    ]

    static let rejectedCases: [RouteCase] = [
        // Percent-encoding: the registry decodes before routing.
        RouteCase("GET", "/v2/team%2Fapp/tags/list", .rejected(.badRequest)),
        RouteCase("GET", "/v2/alice/%2e%2e/bob/tags/list", .rejected(.badRequest)),
        RouteCase("GET", "/v2/%74eam/app/tags/list", .rejected(.badRequest)),
        RouteCase("GET", "/v2/alice%2F..%2Fbob/tags/list", .rejected(.badRequest)),
        // Dot and empty segments: the registry redirects them.
        RouteCase("GET", "/v2/alice/../bob/tags/list", .rejected(.badRequest)),
        RouteCase("GET", "/v2/alice/./app/tags/list", .rejected(.badRequest)),
        RouteCase("GET", "/v2/../v2/app/tags/list", .rejected(.badRequest)),
        RouteCase("GET", "/v2/team//app/tags/list", .rejected(.badRequest)),
        RouteCase("GET", "/v2//app/tags/list", .rejected(.badRequest)),
        RouteCase("GET", "//v2/app/tags/list", .rejected(.notFound)),
        RouteCase("GET", "/v2/app/manifests/./latest", .rejected(.badRequest)),
        // Bytes outside visible ASCII.
        RouteCase("GET", "/v2/team app/tags/list", .rejected(.badRequest)),
        RouteCase("GET", "/v2/team\\app/tags/list", .rejected(.badRequest)),
        RouteCase("GET", "/v2/tëam/tags/list", .rejected(.badRequest)),
        // Names the reference grammar refuses.
        RouteCase("GET", "/v2/Team/app/tags/list", .rejected(.notFound)),
        RouteCase("GET", "/v2/team/App/manifests/latest", .rejected(.notFound)),
        RouteCase("GET", "/v2/app../tags/list", .rejected(.notFound)),
        RouteCase("GET", "/v2/-app/tags/list", .rejected(.notFound)),
        RouteCase("GET", "/v2/localhost:5000/app/tags/list", .rejected(.notFound)),
        // Unknown or unserved methods.
        RouteCase("OPTIONS", "/v2/a/b/tags/list", .rejected(.methodNotAllowed)),
        RouteCase("OPTIONS", "/v2/", .rejected(.methodNotAllowed)),
        RouteCase("TRACE", "/v2/a/b/manifests/latest", .rejected(.methodNotAllowed)),
        RouteCase("get", "/v2/a/b/manifests/latest", .rejected(.methodNotAllowed)),
        RouteCase("POST", "/v2/a/b/manifests/latest", .rejected(.methodNotAllowed)),
        RouteCase("PATCH", "/v2/a/b/manifests/latest", .rejected(.methodNotAllowed)),
        RouteCase("PUT", "/v2/a/b/blobs/\(digest)", .rejected(.methodNotAllowed)),
        RouteCase("POST", "/v2/a/b/blobs/\(digest)", .rejected(.methodNotAllowed)),
        RouteCase("GET", "/v2/a/b/blobs/uploads/", .rejected(.methodNotAllowed)),
        RouteCase("PUT", "/v2/a/b/blobs/uploads/", .rejected(.methodNotAllowed)),
        RouteCase("POST", "/v2/a/b/blobs/uploads/\(uploadID)", .rejected(.methodNotAllowed)),
        RouteCase("DELETE", "/v2/a/b/tags/list", .rejected(.methodNotAllowed)),
        RouteCase("PUT", "/v2/a/b/referrers/\(digest)", .rejected(.methodNotAllowed)),
        RouteCase("DELETE", "/v2/_catalog", .rejected(.methodNotAllowed)),
        RouteCase("POST", "/v2/", .rejected(.methodNotAllowed)),
        // Bad mount parameters.
        RouteCase("POST", "/v2/a/b/blobs/uploads/", query: "mount=\(digest)&from=Bad%20Name", .rejected(.badRequest)),
        RouteCase("POST", "/v2/a/b/blobs/uploads/", query: "mount=\(digest)&from=Bad", .rejected(.badRequest)),
        RouteCase("POST", "/v2/a/b/blobs/uploads/", query: "mount=\(digest)&from=c/../d", .rejected(.badRequest)),
        RouteCase("POST", "/v2/a/b/blobs/uploads/", query: "mount=\(digest)&from=c/d&from=e/f", .rejected(.badRequest)),
        RouteCase("POST", "/v2/a/b/blobs/uploads/", query: "mount=\(digest)&from=c/d&from=c/d", .rejected(.badRequest)),
        RouteCase("POST", "/v2/a/b/blobs/uploads/", query: "mount=\(digest)&mount=\(digest)&from=c/d", .rejected(.badRequest)),
        RouteCase("GET", "/v2/a/b/tags/list", query: "from=x&from=y", .rejected(.badRequest)),
        // Paths that name no route.
        RouteCase("GET", "/v2", .rejected(.notFound)),
        RouteCase("GET", "/v1/", .rejected(.notFound)),
        RouteCase("GET", "/", .rejected(.notFound)),
        RouteCase("GET", "", .rejected(.notFound)),
        RouteCase("GET", "/v2/_catalog/x", .rejected(.notFound)),
        RouteCase("GET", "/v2/_catalog/manifests/latest", .rejected(.notFound)),
        RouteCase("GET", "/v2/_catalog/", .rejected(.notFound)),
        RouteCase("GET", "/v2/a/b", .rejected(.notFound)),
        RouteCase("GET", "/v2/a/b/manifests/", .rejected(.notFound)),
        RouteCase("GET", "/v2/a/b/manifests/latest/", .rejected(.notFound)),
        RouteCase("GET", "/v2/a/b/manifests/-latest", .rejected(.notFound)),
        RouteCase("GET", "/v2/a/b/manifests/" + String(repeating: "t", count: 129), .rejected(.notFound)),
        RouteCase("GET", "/v2/a/b/blobs/latest", .rejected(.notFound)),
        RouteCase("GET", "/v2/a/b/blobs/SHA256:abc", .rejected(.notFound)),
        RouteCase("GET", "/v2/a/b/blobs/sha256:", .rejected(.notFound)),
        RouteCase("POST", "/v2/a/b/blobs/uploads", .rejected(.notFound)),
        RouteCase("PATCH", "/v2/a/b/blobs/uploads/id:with:colons", .rejected(.notFound)),
        RouteCase("GET", "/v2/a/b/tags/list/", .rejected(.notFound)),
        RouteCase("GET", "/v2/a/b/tags", .rejected(.notFound)),
        RouteCase("GET", "/v2/a/b/referrers/latest", .rejected(.notFound)),
        RouteCase("GET", "/v2/manifests/latest", .rejected(.notFound)),
        RouteCase("GET", "/v2/tags/list", .rejected(.notFound)),
    ]

    @Test("a served request maps to the access distribution would demand", arguments: acceptedCases)
    func mapsAcceptedRequest(_ route: RouteCase) throws {
        try check(route)
    }

    @Test("a request the registry would read differently, or not serve, is rejected", arguments: rejectedCases)
    func rejectsRequest(_ route: RouteCase) throws {
        try check(route)
    }

    private func check(_ route: RouteCase) throws {
        let access = AccessMap.requiredAccess(method: route.method, path: route.path, query: route.query)
        switch (route.expected, access) {
        case (.authenticated, .authenticated):
            break
        case (.scopes(let expected), .scopes(let actual)):
            let expectedScopes = try expected.map { try Scope(parsing: $0) }
            #expect(actual == expectedScopes)
        case (.rejected(let expectedKind), .rejected(let rejection)):
            #expect(rejection.kind == expectedKind, "\(rejection.reason)")
            #expect(!rejection.reason.isEmpty)
        default:
            Issue.record("expected \(route.expected), got \(access)")
        }
    }

    @Test("the catalog needs the `*` action, i.e. every action")
    func catalogNeedsAll() {
        let access = AccessMap.requiredAccess(method: "GET", path: "/v2/_catalog", query: nil)
        #expect(access == .scopes([Scope(resource: .catalog, actions: .all)]))
        #expect(access != .scopes([Scope(resource: .catalog, actions: [.pull, .push, .delete])]))
    }

    @Test("Route exposes the endpoint and repository it resolved")
    func routeExposesParts() throws {
        let manifest = try Route(path: "/v2/a/manifests/tags/list/manifests/\(digest)")
        #expect(manifest.repository?.value == "a/manifests/tags/list")
        #expect(manifest.endpoint == .manifest(reference: digest))
        #expect(manifest.endpoint.template == "manifest")

        let upload = try Route(path: "/v2/x/blobs/uploads/\(uploadID)")
        #expect(upload.repository?.value == "x")
        #expect(upload.endpoint == .upload(id: uploadID))

        let base = try Route(path: "/v2/")
        #expect(base.repository == nil)
        #expect(base.endpoint == .base)

        #expect(throws: RouteRejection.self) { try Route(path: "/v2/a/%2e%2e/b/tags/list") }
    }

    @Test("the rejection reason names the path that was refused")
    func rejectionNamesPath() {
        guard case .rejected(let rejection) = AccessMap.requiredAccess(method: "GET", path: "/v2/team%2Fapp/tags/list", query: nil)
        else {
            Issue.record("percent-encoded path was not rejected")
            return
        }
        #expect(rejection.reason.contains("/v2/team%2Fapp/tags/list"))
        #expect(rejection.description == rejection.reason)
    }
}

@Suite("Query parameter decoding")
struct QueryParameterTests {
    @Test("pairs decode like Go's ParseQuery: + is a space, escapes decode, bad pairs are dropped")
    func decodesLikeGo() {
        let query = QueryParameters("from=c%2Fd&scope=a+b&empty=&flag&bad=%zz&x=1&x=2&&utf=%C3%A9&broken=%C3")
        #expect(query.first("from") == "c/d")
        #expect(query.first("scope") == "a b")
        #expect(query.first("empty") == "")
        #expect(query.first("flag") == "")
        #expect(query.first("bad") == nil)
        #expect(query.values("x") == ["1", "2"])
        #expect(query.first("utf") == "é")
        #expect(query.first("broken") == nil)
        #expect(query.first("missing") == nil)
    }

    @Test("encode escapes everything outside the unreserved set and round-trips through decode")
    func encodeRoundTrips() {
        let text = "repository:a/b:pull,push é&=+ ~"
        let encoded = QueryParameters.encode(text)
        #expect(encoded == "repository%3Aa%2Fb%3Apull%2Cpush%20%C3%A9%26%3D%2B%20~")
        #expect(QueryParameters.decode(encoded) == text)
    }
}
