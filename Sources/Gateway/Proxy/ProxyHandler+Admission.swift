import Foundation
import NIOCore
import NIOHTTP1
import Policy

extension ProxyHandler {
    /// Decides a request head on the event loop when everything it needs is at hand: a `/v2/`
    /// route, a Bearer token already verified (or a Basic credential whose check is cached),
    /// and access that the token (and rules) grant in full. Such a request is forwarded from
    /// the pipeline. Anything else, refusals included, goes to ``handle(_:writer:)``, which
    /// answers it with its log and audit lines.
    ///
    /// route → identity → decision → upstream token → forward, without leaving the loop.
    func admit(_ head: HTTPRequestHead, client: ClientRequest) -> Admission? {
        let started = NIODeadline.now()
        guard head.uri.hasPrefix("/v2"), !head.headers.contains(name: "expect") else { return nil }
        let (path, query) = Self.split(head.uri)
        guard path == "/v2" || path.hasPrefix("/v2/") else { return nil }
        let state = state.current

        // Endpoints Portcullis answers itself.
        guard let route = try? Route(path: path) else { return nil }
        if query != nil, route.endpoint == .tags, Self.isAnsweredLocally(method: head.method, path: path, query: query) { return nil }

        // Route, identity and decision from caches only: the request loop's decision, which
        // answers everything this one cannot grant (refusals included, with their log and audit).
        let decision = RegistryAccess(state: state, authenticator: authenticator, signatures: signatureCaches).decideFromCaches(
            RegistryAccess.Request(
                method: head.method, path: path, query: query, headers: head.headers, remoteAddress: client.remoteAddress, requestID: client.id,
                route: route))
        guard case .granted(let account, nil) = decision.outcome else { return nil }
        let scopes = decision.scopes
        let now = Date()
        var head = head
        if let (verdict, digest) = decision.signature {
            observability.metrics.signatureCheck(result: verdict.metricResult)
            head.uri = Self.uri(head.uri, servedBy: digest)
        }

        var log = RequestLog(id: client.id, method: head.method.rawValue, path: path)
        log.resource = scopes.first?.resource.name
        log.action = scopes.first?.actions.description
        log.account = account
        log.issuer = decision.issuer
        guard
            let request = try? forwardedRequest(
                head, path: path, routeTemplate: route.endpoint.template, account: account, scopes: scopes, remoteAddress: client.remoteAddress,
                state: state, log: log, now: now, started: started, countsMetrics: true)
        else { return nil }
        return .forward(request)
    }

    /// The request as it goes to the registry: its head with an upstream token minted (or
    /// reused) for exactly `scopes`, in the pinned registry version's format.
    /// - Throws: when the token cannot be minted or the upstream URL is unusable.
    func forwardedRequest(
        _ head: HTTPRequestHead, path: String, routeTemplate: String, account: String, scopes: [Scope], remoteAddress: String, state: GatewayState,
        log: RequestLog, now: Date, started: NIODeadline, countsMetrics: Bool
    ) throws -> ProxiedRequest {
        let configuration = state.configuration
        // One request, one upstream, one token format: the repository decides where it goes.
        let target = state.upstream(for: scopes.first { $0.resource.type == Resource.repositoryType }?.resource.name, health: health)
        let upstream = target.configuration
        var log = log
        if state.upstreamTargets.count > 1 {
            log.upstream = target.name
            observability.metrics.upstreamRequest(name: target.name)
        }
        let (token, cached) = try target.tokens.token(
            subject: account, scopes: scopes, lifetime: upstream.tokenLifetime, now: now.timeIntervalSince1970
        ) {
            try target.minter.mint(
                TokenClaims(
                    issuer: upstream.issuer, subject: account, audience: upstream.service, scopes: scopes, now: now,
                    lifetime: upstream.tokenLifetime, id: UUID().uuidString))
        }
        observability.metrics.upstreamTokenCache(hit: cached)
        let endpoint = target.endpoint
        var headers = ForwardingHeaders.upstreamRequestHeaders(
            from: head.headers, token: token, publicScheme: configuration.publicURL.scheme,
            publicAuthority: configuration.publicURL.authority, clientAddress: remoteAddress)
        headers.add(name: "Host", value: endpoint.authority)
        ForwardingHeaders.frameBody(of: head, into: &headers)
        return ProxiedRequest(
            upstreamHead: HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers), target: target,
            proxy: self, state: state, method: head.method, path: path, routeTemplate: routeTemplate, account: account, remoteAddress: remoteAddress,
            log: log,
            started: started, countsMetrics: countsMetrics)
    }

    /// The path and query of a request target.
    static func split(_ uri: String) -> (path: String, query: String?) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, nil) }
        return (String(uri[..<mark]), String(uri[uri.index(after: mark)...]))
    }
}
