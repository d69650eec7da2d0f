import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Policy

/// Authorizes `/v2/` requests and forwards them to the registry, streaming both ways.
///
/// The access a request needs comes from Policy's ``AccessMap``; the caller is identified by a
/// Portcullis Bearer token or directly by Basic credentials. The registry receives the request
/// with a token minted by Portcullis for exactly that access, in the pinned version's format.
struct ProxyHandler: Sendable {
    let state: StateHolder
    let authenticator: BasicAuthenticator
    let client: HTTPClient
    let logger: Logger
    let observability: Observability
    /// Where accepted manifest pushes are recorded, when `retention.push_times` names a file.
    let pushTimes: PushTimeRecorder
    /// State of the endpoints Portcullis answers itself.
    let localEndpoints = LocalEndpoints()

    /// How long an upstream exchange may take in total (a multi-GB blob included).
    var upstreamDeadline: TimeAmount = .hours(12)

    func handle(_ request: IncomingRequest, writer: ResponseWriter) async throws {
        let started = ContinuousClock.now
        let state = state.current
        let configuration = state.configuration
        let method = request.head.method.rawValue
        var log = RequestLog(id: request.id, method: method, path: request.path)

        let required = AccessMap.requiredAccess(
            method: method, path: request.path, query: request.query, contentType: request.head.headers.first(name: "content-type"))
        let scopes: [Scope]
        switch required {
        case .rejected(let rejection):
            log.outcome = "rejected: \(rejection.reason)"
            logger.warning("request refused before authorization", metadata: log.metadata)
            try await respond(rejection, writer: writer)
            return
        case .authenticated:
            scopes = []
        case .scopes(let list):
            scopes = list
            log.resource = list.first?.resource.name
            log.action = list.first?.actions.description
        }

        // Identify the caller and check the access.
        let now = Date()
        let account: String
        switch PresentedCredential(request.head.headers) {
        case .none:
            log.outcome = "challenged: no credentials"
            logger.info("request challenged", metadata: log.metadata)
            writer.requestLog = log
            try await challenge(Challenge(realm: configuration.realm, service: configuration.token.service, scopes: scopes), writer: writer, message: "authentication required", scopes: scopes)
            return
        case .malformed(let why):
            log.outcome = "refused: \(why)"
            logger.warning("authentication failed", metadata: log.metadata)
            writer.requestLog = log
            try await challenge(Challenge(realm: configuration.realm, service: configuration.token.service, scopes: scopes, failure: .invalidToken), writer: writer, message: why, scopes: scopes)
            return
        case .bearer(let token):
            let claims: TokenClaims
            let issuer: TrustedIssuers.Issuer
            do {
                (claims, issuer) = try await state.verifyClientToken(token, now: now)
            } catch let error as PolicyError {
                log.outcome = "refused: \(error.message)"
                logger.warning("token rejected", metadata: log.metadata)
                writer.requestLog = log
                try await challenge(Challenge(realm: configuration.realm, service: configuration.token.service, scopes: scopes, failure: .invalidToken), writer: writer, message: "invalid token: \(error.message)", scopes: scopes)
                return
            }
            account = claims.sub.value
            log.account = account
            if !issuer.isPortcullis { log.issuer = issuer.verifier.issuer }
            let granted = claims.scopes
            var missing = scopes.filter { needed in
                !granted.contains { $0.resource == needed.resource && $0.actions.satisfies(needed.actions) }
            }
            if !issuer.trustAccessClaim {
                // An external token grants its access claim ∩ Portcullis's rules for its subject.
                let grant = state.rules.grant(scopes, to: Identity(account: account, kind: .user))
                missing += grant.missing.filter { !missing.contains($0) }
            }
            if !missing.isEmpty, scopes == [Self.catalogScope] {
                let identity = (try? state.credentials.currentIdentity(account: account, now: now.timeIntervalSince1970))
                    ?? Identity(account: account, kind: account.isEmpty ? .anonymous : .user)
                if try await serveFilteredCatalog(request, identity: identity, state: state, writer: writer, log: &log) { return }
            }
            guard missing.isEmpty else {
                log.outcome = "denied: \(issuer.isPortcullis ? "token" : "token or rules") lack \(missing.map(\.description).joined(separator: " "))"
                logger.warning("insufficient scope", metadata: log.metadata)
                writer.requestLog = log
                try await challenge(Challenge(realm: configuration.realm, service: configuration.token.service, scopes: scopes, failure: .insufficientScope), writer: writer, message: "access to the resource is denied", scopes: scopes)
                return
            }
        case .basic(let user, let secret):
            log.account = user
            let identity: Identity
            switch await authenticator.authenticate(account: user, secret: secret, address: request.remoteAddress, state: state, requestID: request.id) {
            case .success(let verified):
                identity = verified
            case .failure(.throttled(let retryAfter, let reason)):
                try await writer.respond(
                    status: .tooManyRequests, error: RegistryErrorBody(code: "TOOMANYREQUESTS", message: reason),
                    headers: ["retry-after": "\(retryAfter)"])
                return
            case .failure(.invalid(let error)):
                writer.requestLog = log
                try await challenge(Challenge(realm: configuration.realm, service: configuration.token.service, scopes: scopes, failure: .invalidToken), writer: writer, message: TokenEndpoint.clientMessage(error), scopes: scopes)
                return
            }
            account = identity.account
            log.account = account
            let grant = state.rules.grant(scopes, to: identity)
            if !grant.isComplete, scopes == [Self.catalogScope] {
                if try await serveFilteredCatalog(request, identity: identity, state: state, writer: writer, log: &log) { return }
            }
            guard grant.isComplete else {
                log.outcome = "denied: \(grant.description)"
                logger.warning("insufficient access", metadata: log.metadata)
                writer.requestLog = log
                try await challenge(Challenge(realm: configuration.realm, service: configuration.token.service, scopes: scopes, failure: .insufficientScope), writer: writer, message: "access to the resource is denied", scopes: scopes)
                return
            }
        }

        // Endpoints Portcullis answers itself (see ProxyHandler+LocalEndpoints.swift).
        if try await answerLocally(request, scopes: scopes, account: account, state: state, writer: writer, log: &log) { return }

        // Forward.
        let upstream = configuration.upstream
        let (token, cached) = try state.upstreamTokens.token(
            subject: account, scopes: scopes, lifetime: upstream.tokenLifetime, now: now.timeIntervalSince1970
        ) {
            try state.upstreamMinter.mint(
                TokenClaims(
                    issuer: upstream.issuer, subject: account, audience: upstream.service, scopes: scopes, now: now,
                    lifetime: upstream.tokenLifetime, id: UUID().uuidString))
        }
        var upstreamRequest = HTTPClientRequest(url: upstream.url + request.head.uri)
        upstreamRequest.method = request.head.method
        upstreamRequest.headers = ForwardingHeaders.upstreamRequestHeaders(
            from: request.head.headers, token: token, publicScheme: configuration.publicURL.scheme,
            publicAuthority: configuration.publicURL.authority, clientAddress: request.remoteAddress)
        if request.hasBody {
            if request.head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                try await writer.writeContinue()
            }
            let length: HTTPClientRequest.Body.Length = request.contentLength.map { .known($0) } ?? .unknown
            upstreamRequest.body = .stream(request.body, length: length)
        } else if request.head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            writer.closeConnection = true
        }

        observability.metrics.upstreamTokenCache(hit: cached)
        let response: HTTPClientResponse
        let upstreamStarted = ContinuousClock.now
        do {
            response = try await client.execute(upstreamRequest, deadline: .now() + upstreamDeadline, logger: nil)
            let elapsed = ContinuousClock.now - upstreamStarted
            observability.metrics.upstreamLatency(
                route: routeTemplate(request.path),
                nanoseconds: elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        } catch {
            if request.body.stream.bodyState == .failed {
                log.outcome = "client went away during the request body"
                logger.notice("request aborted by client", metadata: log.metadata)
                writer.closeConnection = true
                return
            }
            if error is CancellationError || Task.isCancelled {
                // Only a shutdown whose grace period ran out cancels requests in flight.
                log.outcome = "cut: the shutdown grace period (shutdown.grace_period) ended first"
                logger.warning("request cut by shutdown", metadata: log.metadata)
                writer.closeConnection = true
                return
            }
            writer.closeConnection = request.hasBody
            if let clientError = error as? HTTPClientError, clientError == .readTimeout {
                let seconds = configuration.upstreamResponseTimeout
                log.outcome = "upstream timed out: no answer within timeouts.upstream_response (\(seconds) s)"
                logger.error("registry did not answer in time", metadata: log.metadata.merging(["upstream": "\(upstream.url)"]) { $1 })
                try await writer.respond(
                    status: .gatewayTimeout,
                    error: RegistryErrorBody(
                        code: "UNAVAILABLE", message: "the registry at \(upstream.url) did not answer within \(seconds) s (timeouts.upstream_response)"))
                return
            }
            log.outcome = "upstream unreachable: \(error)"
            logger.error("registry unreachable", metadata: log.metadata.merging(["upstream": "\(upstream.url)"]) { $1 })
            try await writer.respond(
                status: .serviceUnavailable,
                error: RegistryErrorBody(code: "UNAVAILABLE", message: "the registry at \(upstream.url) is unavailable", detail: .text("\(error)")))
            return
        }
        log.upstreamStatus = Int(response.status.code)

        if response.status == .unauthorized {
            let registryChallenge = response.headers["www-authenticate"].joined(separator: ", ")
            log.outcome = "registry rejected Portcullis's token"
            logger.error(
                "the registry rejected the token Portcullis minted: check that its auth.token issuer and service match upstream.issuer and upstream.service and that its rootcertbundle (or jwks) trusts Portcullis's key",
                metadata: log.metadata.merging([
                    "registry_challenge": "\(registryChallenge)", "key_hint": "\(state.upstreamMinter.hint)",
                    "key_id": "\(state.upstreamMinter.announcedKeyID)", "registry_version": "\(upstream.registryVersion)",
                    "upstream_issuer": "\(upstream.issuer)", "upstream_service": "\(upstream.service)",
                ]) { $1 })
            writer.closeConnection = request.hasBody && request.body.stream.bodyState != .finished
            try await writer.respond(
                status: .badGateway,
                error: RegistryErrorBody(
                    code: "UNAVAILABLE",
                    message: "the registry rejected Portcullis's token (issuer/service/key trust mismatch between Portcullis and the registry); see Portcullis's error log",
                    detail: .text(registryChallenge)))
            return
        }

        // The registry has made a push or delete by the time it answers 2xx: the tags-of-digest
        // cache and the audit stream learn of it before the client does, and even when the client
        // is gone before the answer reaches it.
        didForward(request, status: Int(response.status.code), headers: response.headers, state: state)
        auditChange(request, account: account, status: Int(response.status.code))
        try await writer.writeHead(status: response.status, headers: ForwardingHeaders.clientResponseHeaders(from: response.headers))
        do {
            for try await buffer in response.body {
                try await writer.writeBody(buffer)
            }
            try await writer.writeEnd()
        } catch {
            log.outcome = "stream broken after \(writer.bytesWritten) bytes: \(error)"
            logger.error("response stream broken", metadata: log.metadata)
            writer.closeConnection = true
            return
        }
        if request.hasBody && request.body.stream.bodyState != .finished { writer.closeConnection = true }
        log.status = Int(response.status.code)
        log.bytes = writer.bytesWritten
        log.duration = ContinuousClock.now - started
        logger.info("request", metadata: log.metadata)
    }

    private func routeTemplate(_ path: String) -> String {
        (try? Route(path: path))?.endpoint.template ?? "other"
    }

    /// Writes completed pushes and deletes to the audit stream.
    private func auditChange(_ request: IncomingRequest, account: String, status: Int) {
        guard (200..<300).contains(status), let route = try? Route(path: request.path) else { return }
        let event: String
        switch (request.head.method, route.endpoint) {
        case (.PUT, .manifest): event = "push"
        case (.PUT, .upload): event = "push_blob"
        case (.DELETE, _): event = "delete"
        default: return
        }
        observability.audit.change(
            event: event, account: account, peer: request.remoteAddress, method: request.head.method.rawValue, path: request.path,
            status: status, requestID: request.id)
    }

    private func respond(_ rejection: RouteRejection, writer: ResponseWriter) async throws {
        switch rejection.kind {
        case .notFound:
            try await writer.respond(status: .notFound, error: RegistryErrorBody(code: "NAME_INVALID", message: rejection.reason))
        case .badRequest:
            try await writer.respond(status: .badRequest, error: RegistryErrorBody(code: "NAME_INVALID", message: rejection.reason))
        case .methodNotAllowed:
            try await writer.respond(status: .methodNotAllowed, error: RegistryErrorBody(code: "UNSUPPORTED", message: rejection.reason))
        }
    }

    private func challenge(_ challenge: Challenge, writer: ResponseWriter, message: String, scopes: [Scope]) async throws {
        if challenge.failure != nil, let log = writer.requestLog {
            observability.audit.denied(
                account: log.account ?? "", peer: writer.peer, method: log.method, path: log.path, reason: log.outcome ?? message, requestID: log.id)
        }
        let detail = scopes.flatMap { scope in
            scope.actions.words.map { RegistryErrorBody.AccessDetail(type: scope.resource.type, name: scope.resource.name, action: $0) }
        }
        try await writer.respond(
            status: .unauthorized,
            error: RegistryErrorBody(code: "UNAUTHORIZED", message: message, detail: detail.isEmpty ? nil : .access(detail)),
            headers: ["www-authenticate": challenge.headerValue])
    }
}
