import NIOHTTP1

/// Sends each request to the endpoint that serves it.
struct GatewayRouter: RequestHandler, RequestAdmission {
    let tokenEndpoint: TokenEndpoint
    let proxy: ProxyHandler
    let readiness: Readiness
    let metrics: GatewayMetrics
    /// The current JWKS document of Portcullis's keys.
    let jwks: @Sendable () -> [UInt8]
    /// The path of ``jwks`` (`token.jwks_path`), read per request so a reload moves it.
    let jwksPath: @Sendable () -> String
    /// The admin listener's router: health, readiness and metrics only.
    var adminOnly = false
    /// The registry browser, served under `/ui/` while `ui.enabled`.
    var ui: UIHandler? = nil
    /// Whether `ui.enabled` holds now (read per request, so a reload switches it).
    var uiEnabled: @Sendable () -> Bool = { false }

    /// Decides on the event loop what can be: `/v2/` requests the proxy forwards at once, and
    /// tokens for cached credentials. Everything else goes to ``handle(_:writer:)``.
    func admit(_ head: HTTPRequestHead, client: ClientRequest) -> Admission? {
        guard !adminOnly else { return nil }
        if head.uri.hasPrefix("/v2") { return proxy.admit(head, client: client) }
        if head.uri == "/token" || head.uri.hasPrefix("/token?") {
            let query = head.uri.firstIndex(of: "?").map { String(head.uri[head.uri.index(after: $0)...]) }
            return tokenEndpoint.answerOnLoop(head, query: query, client: client).map { .respond($0) }
        }
        return nil
    }

    func handle(_ request: IncomingRequest, writer: ResponseWriter) async throws {
        if adminOnly && !["/healthz", "/readyz", "/metrics"].contains(request.path) {
            try await writer.respond(
                .nameUnknown,
                message: "no such endpoint: the admin listener serves /healthz, /readyz and /metrics")
            return
        }
        switch request.path {
        case "/token":
            try await tokenEndpoint.handle(request, writer: writer)
        case "/healthz":
            try await writer.respond(status: .ok, body: Array("ok\n".utf8), contentType: "text/plain")
        case "/metrics":
            try await writer.respond(status: .ok, body: metrics.exposition(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case "/readyz":
            let (ready, reason) = readiness.current
            try await writer.respond(
                status: ready ? .ok : .serviceUnavailable, body: Array("\(ready ? "ready" : "not ready"): \(reason)\n".utf8),
                contentType: "text/plain")
        case jwksPath():
            try await writer.respond(status: .ok, body: jwks(), contentType: "application/json")
        default:
            if request.path == "/v2" || request.path.hasPrefix("/v2/") {
                try await proxy.handle(request, writer: writer)
            } else if let ui, request.path == "/ui" || request.path.hasPrefix("/ui/"), uiEnabled() {
                try await ui.handle(request, writer: writer)
            } else {
                try await writer.respond(
                    .nameUnknown,
                    message: "no such endpoint: Portcullis serves /v2/, /token, /healthz and /readyz")
            }
        }
    }
}
