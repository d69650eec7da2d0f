import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Policy

extension ProxyHandler {
    /// The scope that guards the full catalog.
    static let catalogScope = Scope(resource: .catalog, actions: .all)

    /// Upstream page size while collecting the catalog.
    static let upstreamCatalogPage = 1000

    /// Answers `/v2/_catalog` for a caller without `registry:catalog:*` with only the
    /// repositories it may pull, paginated with `n`/`last` and `Link` like the registry.
    ///
    /// - Returns: `false` when a rule explicitly denies the catalog (`actions: []`), in which
    ///   case the caller must be refused as before.
    func serveFilteredCatalog(
        _ request: IncomingRequest, identity: Identity, state: GatewayState, writer: ResponseWriter, log: inout RequestLog
    ) async throws -> Bool {
        let decision = state.rules.decide(Self.catalogScope, for: identity)
        if let index = decision.ruleIndex, state.rules.rules[index].actions.isEmpty {
            return false
        }
        let repositories: [String]
        switch await fullCatalog(state: state) {
        case .success(let names):
            repositories = names
        case .failure(.unreachable(let error)):
            log.outcome = "upstream unreachable: \(error)"
            logger.error("registry unreachable", metadata: log.metadata)
            try await writer.respond(.unavailable, message: "the registry is unavailable")
            return true
        case .failure(.status(let code)):
            log.outcome = "registry answered the catalog with \(code)"
            logger.error("catalog fetch failed", metadata: log.metadata)
            try await writer.respond(.upstreamFailed, message: "the registry's catalog could not be read (status \(code))")
            return true
        }

        let visible = repositories.filter { name in
            state.rules.decide(Scope(resource: Resource(type: Resource.repositoryType, name: name), actions: .pull), for: identity)
                .granted.contains(.pull)
        }.sorted()

        // The caller's own page.
        let parameters = QueryParameters(request.query ?? "")
        let after = parameters.first("last")
        var remaining = after.map { marker in visible.filter { $0 > marker } } ?? visible
        var headers: HTTPHeaders = ["docker-distribution-api-version": "registry/2.0"]
        if let count = parameters.first("n").flatMap(Int.init), count >= 0 {
            let page = Array(remaining.prefix(count))
            if remaining.count > count, let final = page.last {
                headers.add(name: "Link", value: "</v2/_catalog?last=\(QueryParameters.encode(final))&n=\(count)>; rel=\"next\"")
            }
            remaining = page
        }
        let json = try JSONSerialization.data(withJSONObject: ["repositories": remaining], options: [.withoutEscapingSlashes])
        try await writer.respond(status: .ok, headers: headers, body: Array(json), contentType: "application/json; charset=utf-8")
        log.outcome = "filtered catalog: \(remaining.count) of \(repositories.count) repositories"
        return true
    }

    /// Why the catalog could not be read.
    enum CatalogFailure: Error {
        case unreachable(String)
        case status(UInt)
    }

    /// Every repository name of the primary registry (which answers the catalog), page by page,
    /// with a token for the whole catalog.
    func fullCatalog(state: GatewayState) async -> Result<[String], CatalogFailure> {
        let upstream = state.configuration.upstream
        let now = Date()
        let token: String
        do {
            (token, _) = try state.upstreamTokens.token(
                subject: "portcullis-catalog", scopes: [Self.catalogScope], lifetime: upstream.tokenLifetime, now: now.timeIntervalSince1970
            ) {
                try state.upstreamMinter.mint(
                    TokenClaims(
                        issuer: upstream.issuer, subject: "portcullis-catalog", audience: upstream.service, scopes: [Self.catalogScope],
                        now: now, lifetime: upstream.tokenLifetime, id: UUID().uuidString))
            }
        } catch {
            return .failure(.unreachable("cannot mint a catalog token: \(error)"))
        }
        var repositories: [String] = []
        var last: String?
        while true {
            var url = "\(upstream.url)/v2/_catalog?n=\(Self.upstreamCatalogPage)"
            if let last { url += "&last=\(QueryParameters.encode(last))" }
            var upstreamRequest = HTTPClientRequest(url: url)
            upstreamRequest.headers.add(name: "Authorization", value: "Bearer \(token)")
            let response: HTTPClientResponse
            let body: ByteBuffer
            do {
                response = try await client.execute(upstreamRequest, timeout: .seconds(60))
                body = try await response.body.collect(upTo: 64 << 20)
            } catch {
                return .failure(.unreachable(ConnectionFailure.describe(error)))
            }
            guard response.status == .ok,
                let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
                let page = object["repositories"] as? [String]
            else { return .failure(.status(response.status.code)) }
            repositories += page
            guard response.headers["link"].contains(where: { $0.contains("rel=\"next\"") }), let final = page.last, page.count > 0 else { break }
            last = final
        }
        return .success(repositories)
    }
}
