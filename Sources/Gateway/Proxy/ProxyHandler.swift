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
    /// Pushes to one protected tag, one at a time.
    let tagPushLocks = TagPushLocks()
    /// Verified signatures and recently resolved tags (`content[].signed_by`).
    let signatureCaches = SignatureCaches()
    /// The postgres state store; `nil` with the embedded store.
    var shared: SharedState? = nil
    /// Which upstreams are out of rotation (several upstreams only).
    var health = UpstreamHealth()

    func handle(_ request: IncomingRequest, writer: ResponseWriter) async throws {
        let started = NIODeadline.now()
        var log = RequestLog(id: request.id, method: request.head.method.rawValue, path: request.path)
        // A forwarded request's line comes from the exchange (``ProxiedRequest/finished(_:)``);
        // every other request's, answered here, once it is answered or has failed.
        var forwarded = false
        defer {
            if !forwarded {
                log.status = writer.status.map { Int($0.code) }
                log.bytes = writer.bytesWritten
                log.durationNanoseconds = (NIODeadline.now() - started).nanoseconds
                logger.info("request", metadata: log.metadata)
            }
        }
        forwarded = try await serve(request, writer: writer, started: started, log: &log)
    }

    /// route → identity → decision → upstream token → forward, or Portcullis's own answer.
    /// `log` gets the caller and the outcome. Returns whether the request was forwarded.
    private func serve(_ request: IncomingRequest, writer: ResponseWriter, started: NIODeadline, log: inout RequestLog) async throws -> Bool {
        let state = state.current

        // Route, identity and decision: the one decision the event loop's fast path makes too.
        let decision = await RegistryAccess(state: state, authenticator: authenticator, signatures: signatureCaches).decide(
            RegistryAccess.Request(
                method: request.head.method, path: request.path, query: request.query, headers: request.head.headers,
                remoteAddress: request.remoteAddress, requestID: request.id))
        let scopes = decision.scopes
        log.resource = scopes.first?.resource.name
        log.action = scopes.first?.actions.description
        log.issuer = decision.issuer
        let now = Date()
        let account: String
        let check: ContentCheck?
        switch decision.outcome {
        case .granted(let granted, let contentCheck):
            account = granted
            check = contentCheck
            log.account = account
        case .refused(let refusal):
            try await refuse(refusal, scopes: scopes, state: state, writer: writer, log: &log)
            return false
        case .filteredCatalog(let identity, let otherwise):
            log.account = identity.account
            if try await serveFilteredCatalog(request, identity: identity, state: state, writer: writer, log: &log) { return false }
            try await refuse(otherwise, scopes: scopes, state: state, writer: writer, log: &log)
            return false
        case .needsAsynchronousPath:
            log.outcome = "no decision: the request loop verifies every credential"
            logger.error("request failed", metadata: log.metadata)
            try await writer.respond(.unknown, message: "internal error")
            return false
        }

        // Endpoints Portcullis answers itself (see ProxyHandler+LocalEndpoints.swift).
        if try await answerLocally(request, scopes: scopes, account: account, state: state, writer: writer, log: &log) { return false }

        // Forward, through the connection's forwarding core.
        guard let forwarding = request.forwarding else {
            log.outcome = "this listener does not forward"
            try await writer.respond(.unknown, message: "this listener does not forward")
            return false
        }
        // What a content rule needs the registry to say first; the request waits for it.
        let expectsContinue = request.head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" })
        var bufferedBody: ByteBuffer?
        var heldTag: String?
        var head = request.head
        if let check {
            if request.hasBody && expectsContinue { try await writer.writeContinue() }
            switch await checkContent(check, request: request, account: account, state: state) {
            case .proceed(let body, let held, let servedDigest):
                bufferedBody = body
                heldTag = held
                if let servedDigest { head.uri = Self.uri(request.head.uri, servedBy: servedDigest) }
            case .refused(let refusal):
                try await refuse(
                    RegistryAccessRefusal(answer: .denied(message: refusal.description), outcome: "content rule: \(refusal)", warning: "refused by a content rule"),
                    scopes: scopes, state: state, writer: writer, log: &log)
                return false
            case .failed(let error, let message, let outcome):
                log.outcome = outcome
                logger.error("content rule check failed", metadata: log.metadata)
                if request.hasBody && request.body.stream.bodyState != .finished { writer.closeConnection = true }
                try await writer.respond(error, message: message, headers: error == .unavailable ? ["retry-after": "5"] : [:])
                return false
            }
        }
        defer { if let heldTag { tagPushLocks.release(heldTag) } }

        let forwarded: ProxiedRequest
        do {
            forwarded = try forwardedRequest(
                head, path: request.path, routeTemplate: Self.routeTemplate(request.path), account: account, scopes: scopes,
                remoteAddress: request.remoteAddress, state: state, log: log, now: now, started: started,
                countsMetrics: false)
        } catch {
            log.outcome = "upstream token not minted: \(error)"
            logger.error("request failed", metadata: log.metadata)
            try await writer.respond(.unknown, message: "internal error")
            return false
        }
        if request.hasBody {
            if expectsContinue && check == nil { try await writer.writeContinue() }
        } else if expectsContinue {
            writer.closeConnection = true
        }
        let outcome =
            if let bufferedBody {
                await forwarding.forward(forwarded, body: BufferedRequestBody(buffer: bufferedBody), keepAlive: request.head.isKeepAlive, isHEAD: false)
            } else {
                await forwarding.forward(
                    forwarded, body: request.hasBody ? request.body : nil, keepAlive: request.head.isKeepAlive, isHEAD: request.head.method == .HEAD)
            }
        writer.recordForwarded(outcome)
        if request.hasBody && request.body.stream.bodyState != .finished { writer.closeConnection = true }
        return true
    }

    /// `uri` (a manifest by tag) asking for the manifest by `digest` instead: what was checked is what is served.
    static func uri(_ uri: String, servedBy digest: String) -> String {
        let (path, query) = split(uri)
        // `/v2/<name>/manifests/<reference>`: the reference is what follows the last slash.
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return uri }
        return String(path[...slash]) + digest + (query.map { "?" + $0 } ?? "")
    }

    /// The route template of `path` for metric labels.
    static func routeTemplate(_ path: String) -> String {
        (try? Route(path: path))?.endpoint.template ?? "other"
    }

    /// A registry-style error response of Portcullis's own.
    static func errorResponse(_ error: RegistryError, message: String, detail: RegistryErrorBody.Detail? = nil) -> LocalResponse {
        LocalResponse(
            status: error.status,
            headers: ["docker-distribution-api-version": "registry/2.0", "content-type": "application/json; charset=utf-8"],
            body: RegistryErrorBody(error, message: message, detail: detail).json)
    }

    /// Writes completed pushes and deletes to the audit stream.
    func auditChange(method: HTTPMethod, path: String, account: String, peer: String, status: Int, requestID: String) {
        guard (200..<300).contains(status), let route = try? Route(path: path) else { return }
        let event: String
        switch (method, route.endpoint) {
        case (.PUT, .manifest): event = "push"
        case (.PUT, .upload): event = "push_blob"
        case (.DELETE, _): event = "delete"
        default: return
        }
        observability.audit.change(
            event: event, account: account, peer: peer, method: method.rawValue, path: path, status: status, requestID: requestID)
    }

    /// Answers a refused request, with its log line's outcome and warning, and its audit
    /// record when a presented credential was refused.
    private func refuse(
        _ refusal: RegistryAccessRefusal, scopes: [Scope], state: GatewayState, writer: ResponseWriter, log: inout RequestLog
    ) async throws {
        if let account = refusal.account { log.account = account }
        log.outcome = refusal.outcome
        if let warning = refusal.warning { logger.warning("\(warning)", metadata: log.metadata) }
        let configuration = state.configuration
        switch refusal.answer {
        case .rejected(let rejection):
            switch rejection.kind {
            case .notFound: try await writer.respond(.routeUnknown, message: rejection.reason)
            case .badRequest: try await writer.respond(.nameInvalid, message: rejection.reason)
            case .methodNotAllowed: try await writer.respond(.unsupportedMethod, message: rejection.reason)
            }
        case .throttled(let retryAfter, let reason):
            try await writer.respond(.tooManyRequests, message: reason, headers: ["retry-after": "\(retryAfter)"])
        case .unavailable:
            writer.requestLog = log
            try await writer.respond(.unavailable, message: BasicAuthenticator.Failure.unavailableMessage, headers: ["retry-after": "5"])
        case .denied(let message):
            observability.audit.denied(
                account: log.account ?? "", peer: writer.peer, method: log.method, path: log.path, reason: refusal.outcome, requestID: log.id)
            try await writer.respond(.denied, message: message)
        case .challenge(let failure, let message):
            writer.requestLog = log
            try await challenge(
                Challenge(realm: configuration.realm, service: configuration.token.service, scopes: scopes, failure: failure), writer: writer,
                message: message, scopes: scopes)
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
            .unauthorized,
            message: message, detail: detail.isEmpty ? nil : .access(detail),
            headers: ["www-authenticate": challenge.headerValue])
    }
}
