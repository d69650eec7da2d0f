import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Policy

/// The Docker token endpoint (`/token`).
///
/// `GET` follows the Docker token specification: Basic credentials or none (anonymous),
/// `service` must be Portcullis's own, `scope` repeated and/or space separated, and
/// `offline_token=true` adds a refresh token. `POST` follows distribution's OAuth2 profile:
/// form-encoded `grant_type=password` or `grant_type=refresh_token`. A token grants the
/// requested access that the rules allow; asking for more than one may have is not an error.
struct TokenEndpoint: Sendable {
    let state: StateHolder
    let authenticator: BasicAuthenticator
    let logger: Logger
    let observability: Observability

    /// The largest form body accepted.
    static let maximumFormSize = 64 * 1024

    func handle(_ request: IncomingRequest, writer: ResponseWriter) async throws {
        switch request.head.method {
        case .GET, .HEAD:
            try await handleGet(request, writer: writer)
        case .POST:
            try await handlePost(request, writer: writer)
        default:
            try await writer.respond(
                .unsupportedMethod,
                message: "the token endpoint answers GET and POST",
                headers: ["allow": "GET, POST"])
        }
    }

    // MARK: GET (Docker token specification)

    private func handleGet(_ request: IncomingRequest, writer: ResponseWriter) async throws {
        let state = state.current
        let configuration = state.configuration
        switch await decide(query: request.query, headers: request.head.headers, state: state, remoteAddress: request.remoteAddress, requestID: request.id) {
        case .issue(let identity, let scopes, let offline):
            let issued = try issue(scopes, to: identity, state: state, requestID: request.id, peer: request.remoteAddress, refresh: offline)
            let answer = Self.tokenAnswer(issued, lifetime: configuration.token.lifetime)
            try await writer.respond(status: answer.status, headers: answer.headers, body: answer.body, contentType: "application/json")
        case .badRequest(let message):
            logger.warning("token request refused", metadata: ["request": "\(request.id)", "reason": "\(message)"])
            try await writer.respond(.unsupportedRequest, message: message)
        case .refused(let reason):
            try await refuse(request, writer, realm: configuration.realm, reason: reason)
        case .failed(let account, .throttled(let retryAfter, let reason)):
            observability.metrics.tokenIssuance(outcome: "throttled")
            observability.audit.denied(account: account, peer: request.remoteAddress, method: "GET", path: "/token", reason: reason, requestID: request.id)
            try await writer.respond(.tooManyRequests, message: reason, headers: ["retry-after": "\(retryAfter)"])
        case .failed(let account, .invalid(let error)):
            observability.metrics.tokenIssuance(outcome: "refused")
            observability.audit.denied(account: account, peer: request.remoteAddress, method: "GET", path: "/token", reason: error.message, requestID: request.id)
            try await writer.respond(
                .unauthorized, message: "authentication required: \(Self.clientMessage(error))",
                headers: ["www-authenticate": "Basic realm=\"\(configuration.realm)\""])
        case .failed(let account, .unavailable(let reason)):
            observability.metrics.tokenIssuance(outcome: "unavailable")
            observability.audit.denied(account: account, peer: request.remoteAddress, method: "GET", path: "/token", reason: reason, requestID: request.id)
            try await writer.respond(.unavailable, message: BasicAuthenticator.Failure.unavailableMessage, headers: ["retry-after": "5"])
        case .needsAsynchronousPath:
            logger.error("request failed", metadata: ["request": "\(request.id)", "reason": "no decision: the request loop verifies every credential"])
            try await writer.respond(.unknown, message: "internal error")
        }
    }

    /// Answers `GET /token` on the event loop when nothing has to wait: the service and scopes
    /// are valid and the caller is anonymous or presents a Basic credential whose check is
    /// cached. `nil` leaves the request to ``handle(_:writer:)`` (refusals included).
    func answerOnLoop(_ head: HTTPRequestHead, query: String?, client: ClientRequest) -> LocalResponse? {
        guard head.method == .GET, !head.headers.contains(name: "content-length"), !head.headers.contains(name: "transfer-encoding") else { return nil }
        let state = state.current
        guard case .issue(let identity, let scopes, let offline) = decideFromCaches(query: query, headers: head.headers, state: state, remoteAddress: client.remoteAddress, requestID: client.id),
            let issued = try? issue(scopes, to: identity, state: state, requestID: client.id, peer: client.remoteAddress, refresh: offline)
        else { return nil }
        let answer = Self.tokenAnswer(issued, lifetime: state.configuration.token.lifetime)
        observability.metrics.request(route: "token", method: "GET", status: 200, bytesIn: 0, bytesOut: answer.body.count)
        return answer
    }

    // MARK: The decision

    /// The decision about `GET /token` from the caches alone, for the event loop.
    func decideFromCaches(query: String?, headers: HTTPHeaders, state: GatewayState, remoteAddress: String, requestID: String) -> TokenRequestDecision {
        switch decideUntilVerification(query: query, headers: headers, state: state, remoteAddress: remoteAddress, requestID: requestID) {
        case .decided(let decision): decision
        case .verify: .needsAsynchronousPath
        }
    }

    /// The decision about `GET /token` with the credential verified however long that takes.
    func decide(query: String?, headers: HTTPHeaders, state: GatewayState, remoteAddress: String, requestID: String) async -> TokenRequestDecision {
        switch decideUntilVerification(query: query, headers: headers, state: state, remoteAddress: remoteAddress, requestID: requestID) {
        case .decided(let decision):
            return decision
        case .verify(let account, let secret, let scopes, let offline):
            switch await authenticator.authenticate(account: account, secret: secret, address: remoteAddress, state: state, requestID: requestID) {
            case .success(let identity): return .issue(identity, scopes: scopes, offline: offline && identity.kind != .anonymous)
            case .failure(let failure): return .failed(account: account, failure)
            }
        }
    }

    /// How far the decision gets without waiting.
    private enum Progress {
        case decided(TokenRequestDecision)
        /// Basic credentials whose check is not cached.
        case verify(account: String, secret: String, scopes: [Scope], offline: Bool)
    }

    /// Service, scopes and caller, as far as the caches go: the part both paths share.
    private func decideUntilVerification(query: String?, headers: HTTPHeaders, state: GatewayState, remoteAddress: String, requestID: String) -> Progress {
        let configuration = state.configuration
        let parameters = QueryParameters(query ?? "")
        let service = parameters.first("service")
        guard service == configuration.token.service else {
            return .decided(
                .badRequest(
                    service == nil
                        ? "the service parameter is required (this token server serves \"\(configuration.token.service)\")"
                        : "service \"\(service!)\" is not served here (expected \"\(configuration.token.service)\")"))
        }
        let scopes: [Scope]
        do {
            scopes = try Scope.parseAll(parameters.values("scope"))
        } catch let error as PolicyError {
            return .decided(.badRequest(error.message))
        } catch {
            return .decided(.badRequest("\(error)"))
        }
        let offline = parameters.first("offline_token") == "true"
        switch PresentedCredential(headers) {
        case .none:
            return .decided(.issue(.anonymous, scopes: scopes, offline: false))
        case .basic(let account, let secret):
            if let requested = parameters.first("account"), !requested.isEmpty, requested != account {
                return .decided(.refused(reason: "account parameter \"\(requested)\" does not match the Basic credentials user \"\(account)\""))
            }
            let now = Date().timeIntervalSince1970
            guard state.credentials.isCheapToVerify(account: account, secret: secret, now: now, cache: authenticator.cache),
                case .allowed = authenticator.throttle.check(account: account, address: remoteAddress, now: now),
                let identity = try? state.credentials.authenticate(account: account, secret: secret, now: now, cache: authenticator.cache)
            else { return .verify(account: account, secret: secret, scopes: scopes, offline: offline) }
            authenticator.throttle.recordSuccess(account: account)
            return .decided(.issue(identity, scopes: scopes, offline: offline && identity.kind != .anonymous))
        case .bearer:
            return .decided(.refused(reason: "the token endpoint takes Basic credentials, not a Bearer token"))
        case .malformed(let why):
            return .decided(.refused(reason: why))
        }
    }

    /// The Docker token answer (`token` and `access_token` alike), keys sorted, encoded straight into bytes.
    private static func tokenAnswer(_ issued: Issued, lifetime: Int) -> LocalResponse {
        var body: [UInt8] = []
        body.reserveCapacity(issued.token.utf8.count * 2 + (issued.refreshToken?.utf8.count ?? 0) + 128)
        body.append(contentsOf: #"{"access_token":"#.utf8)
        LogLineEncoder.appendJSONString(issued.token, to: &body)
        body.append(contentsOf: #","expires_in":"#.utf8)
        body.append(contentsOf: String(lifetime).utf8)
        body.append(contentsOf: #","issued_at":"#.utf8)
        LogLineEncoder.appendJSONString(issued.issuedAt, to: &body)
        if let refresh = issued.refreshToken {
            body.append(contentsOf: #","refresh_token":"#.utf8)
            LogLineEncoder.appendJSONString(refresh, to: &body)
        }
        body.append(contentsOf: #","token":"#.utf8)
        LogLineEncoder.appendJSONString(issued.token, to: &body)
        body.append(UInt8(ascii: "}"))
        return LocalResponse(status: .ok, headers: ["cache-control": "no-store", "content-type": "application/json"], body: body)
    }

    // MARK: POST (OAuth2)

    private func handlePost(_ request: IncomingRequest, writer: ResponseWriter) async throws {
        let state = state.current
        let configuration = state.configuration
        let contentType = request.head.headers.first(name: "content-type")?.lowercased() ?? ""
        guard contentType.hasPrefix("application/x-www-form-urlencoded") else {
            try await oauthError(writer, status: .badRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
            return
        }
        var form = ByteBuffer()
        do {
            for try await part in request.body {
                guard form.readableBytes + part.readableBytes <= Self.maximumFormSize else {
                    writer.closeConnection = true
                    try await oauthError(writer, status: .payloadTooLarge, "invalid_request", "the form is larger than \(Self.maximumFormSize) bytes")
                    return
                }
                var part = part
                form.writeBuffer(&part)
            }
        } catch {
            writer.closeConnection = true
            return
        }
        let parameters = QueryParameters(form.readString(length: form.readableBytes) ?? "")
        guard parameters.first("service") == configuration.token.service else {
            try await oauthError(writer, status: .badRequest, "invalid_request", "service must be \"\(configuration.token.service)\"")
            return
        }
        let scopes: [Scope]
        do {
            scopes = try Scope.parseAll(parameters.values("scope"))
        } catch let error as PolicyError {
            try await oauthError(writer, status: .badRequest, "invalid_scope", error.message)
            return
        }
        let offline = parameters.first("access_type") == "offline"

        let identity: Identity
        var refreshToken: String?
        var exchanged = false
        switch parameters.first("grant_type") {
        case "password":
            guard let username = parameters.first("username"), let password = parameters.first("password") else {
                try await oauthError(writer, status: .badRequest, "invalid_request", "grant_type=password needs username and password")
                return
            }
            let result = await authenticator.authenticate(account: username, secret: password, address: request.remoteAddress, state: state, requestID: request.id)
            guard let verified = try await verifiedOrRefused(result, account: username, request: request, writer: writer) else { return }
            identity = verified
        case Self.tokenExchangeGrant:
            guard let subjectToken = parameters.first("subject_token"), let type = parameters.first("subject_token_type") else {
                try await oauthError(writer, status: .badRequest, "invalid_request", "a token exchange needs subject_token and subject_token_type")
                return
            }
            guard Self.subjectTokenTypes.contains(type) else {
                try await oauthError(
                    writer, status: .badRequest, "invalid_request",
                    "subject_token_type must be one of \(Self.subjectTokenTypes.sorted().joined(separator: ", ")) (got \"\(type)\")")
                return
            }
            guard let (issuer, token) = state.workloadIssuer(presentedAsPassword: subjectToken) else {
                observability.metrics.tokenIssuance(outcome: "refused")
                observability.audit.denied(
                    account: "", peer: request.remoteAddress, method: "POST", path: "/token", reason: "token exchange: subject token of no configured OIDC issuer",
                    requestID: request.id)
                logger.warning(
                    "identity token refused",
                    metadata: ["request": "\(request.id)", "peer": "\(request.remoteAddress)", "reason": "subject token is not a JWT of a configured OIDC issuer"])
                try await oauthError(writer, status: .unauthorized, "invalid_grant", "subject_token is not an identity token of an issuer Portcullis trusts")
                return
            }
            let result = await authenticator.authenticateWorkload(
                token, secret: subjectToken, issuer: issuer, user: "", address: request.remoteAddress, state: state, requestID: request.id)
            guard let verified = try await verifiedOrRefused(result, account: "", request: request, writer: writer) else { return }
            identity = verified
            exchanged = true
        case "refresh_token":
            guard let presented = parameters.first("refresh_token") else {
                try await oauthError(writer, status: .badRequest, "invalid_request", "grant_type=refresh_token needs refresh_token")
                return
            }
            do {
                let claims = try await state.refreshVerifier.verify(presented, now: Date())
                identity = try state.credentials.currentIdentity(account: claims.sub.value, now: Date().timeIntervalSince1970)
                refreshToken = presented
            } catch let error as PolicyError {
                observability.metrics.tokenIssuance(outcome: "refused")
                observability.audit.denied(account: "", peer: request.remoteAddress, method: "POST", path: "/token", reason: "refresh token: \(error.message)", requestID: request.id)
                logger.warning(
                    "refresh token refused",
                    metadata: ["request": "\(request.id)", "peer": "\(request.remoteAddress)", "reason": "\(error.message)"])
                try await oauthError(writer, status: .unauthorized, "invalid_grant", "the refresh token is not valid (\(error.code == .invalidToken ? "invalid or expired" : "account removed or disabled"))")
                return
            }
        case let other:
            try await oauthError(
                writer, status: .badRequest, "unsupported_grant_type",
                "grant_type \(other.map { "\"\($0)\"" } ?? "(missing)") is not supported (password, refresh_token, \(Self.tokenExchangeGrant))")
            return
        }

        let issued = try issue(scopes, to: identity, state: state, requestID: request.id, peer: request.remoteAddress, refresh: offline && refreshToken == nil)
        var body: [String: Any] = [
            "access_token": issued.token, "expires_in": configuration.token.lifetime, "issued_at": issued.issuedAt,
            "scope": issued.grantedScopes.map(\.description).joined(separator: " "),
        ]
        if let refresh = issued.refreshToken ?? (offline ? refreshToken : nil) { body["refresh_token"] = refresh }
        if exchanged {
            body["issued_token_type"] = "urn:ietf:params:oauth:token-type:access_token"
            body["token_type"] = "Bearer"
        }
        try await respondJSON(body, writer: writer)
    }

    /// RFC 8693's grant type.
    static let tokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"
    /// The subject token types a token exchange takes: an OIDC issuer's signed JWT.
    static let subjectTokenTypes: Set<String> = [
        "urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token", "urn:ietf:params:oauth:token-type:access_token",
    ]

    /// The identity of a successful authentication; otherwise writes the OAuth error answer
    /// (429, 401 or 503), audits the refusal and returns `nil`.
    private func verifiedOrRefused(
        _ result: Result<Identity, BasicAuthenticator.Failure>, account: String, request: IncomingRequest, writer: ResponseWriter
    ) async throws -> Identity? {
        switch result {
        case .success(let identity):
            return identity
        case .failure(.throttled(let retryAfter, let reason)):
            observability.metrics.tokenIssuance(outcome: "throttled")
            observability.audit.denied(account: account, peer: request.remoteAddress, method: "POST", path: "/token", reason: reason, requestID: request.id)
            try await oauthError(writer, status: .tooManyRequests, "invalid_grant", reason, headers: ["retry-after": "\(retryAfter)"])
        case .failure(.invalid(let error)):
            observability.metrics.tokenIssuance(outcome: "refused")
            observability.audit.denied(account: account, peer: request.remoteAddress, method: "POST", path: "/token", reason: error.message, requestID: request.id)
            try await oauthError(writer, status: .unauthorized, "invalid_grant", Self.clientMessage(error))
        case .failure(.unavailable(let reason)):
            observability.metrics.tokenIssuance(outcome: "unavailable")
            observability.audit.denied(account: account, peer: request.remoteAddress, method: "POST", path: "/token", reason: reason, requestID: request.id)
            try await oauthError(
                writer, status: .serviceUnavailable, "temporarily_unavailable", BasicAuthenticator.Failure.unavailableMessage,
                headers: ["retry-after": "5"])
        }
        return nil
    }

    // MARK: Issuing

    private struct Issued {
        var token: String
        var issuedAt: String
        var grantedScopes: [Scope]
        var refreshToken: String?
    }

    private func issue(_ scopes: [Scope], to identity: Identity, state: GatewayState, requestID: String, peer: String, refresh: Bool) throws -> Issued {
        let configuration = state.configuration
        let now = Date()
        let grant = state.rules.grant(scopes, to: identity, mode: configuration.token.grant)
        let claims = TokenClaims(
            issuer: configuration.token.issuer, subject: identity.account, audience: configuration.token.service,
            scopes: grant.scopes, now: now, lifetime: configuration.token.lifetime, id: UUID().uuidString)
        let token = try state.clientMinter.mint(claims)
        var refreshToken: String?
        if refresh {
            refreshToken = try state.clientMinter.mint(
                TokenClaims(
                    issuer: configuration.token.issuer, subject: identity.account, audience: GatewayState.refreshAudience(configuration),
                    scopes: [], now: now, lifetime: configuration.token.refreshLifetime, id: UUID().uuidString))
        }
        var metadata: Logger.Metadata = [
            "request": "\(requestID)", "account": "\(identity)",
            "granted": "\(grant.scopes.map(\.description).joined(separator: " "))",
        ]
        if refresh { metadata["refresh_token"] = "issued" }
        if !grant.isComplete {
            metadata["explanation"] = "\(grant.description)"
            logger.notice("token issued with less access than requested", metadata: metadata)
        } else {
            logger.info("token issued", metadata: metadata)
        }
        observability.metrics.tokenIssuance(outcome: grant.isComplete ? "complete" : "partial")
        observability.audit.tokenIssued(
            account: identity.kind == .anonymous ? "anonymous" : identity.account, peer: peer,
            granted: grant.scopes.map(\.description).joined(separator: " "), refreshToken: refresh, requestID: requestID)
        return Issued(
            token: token, issuedAt: InternetTime.seconds((claims.iat?.value ?? now).timeIntervalSince1970), grantedScopes: grant.scopes,
            refreshToken: refreshToken)
    }

    // MARK: Answers

    private func respondJSON(_ body: [String: Any], writer: ResponseWriter) async throws {
        let json = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])
        try await writer.respond(
            status: .ok, headers: ["cache-control": "no-store"], body: Array(json), contentType: "application/json")
    }

    private func oauthError(
        _ writer: ResponseWriter, status: HTTPResponseStatus, _ error: String, _ description: String, headers: HTTPHeaders = [:]
    ) async throws {
        let json = try JSONSerialization.data(withJSONObject: ["error": error, "error_description": description], options: [.sortedKeys])
        try await writer.respond(status: status, headers: headers, body: Array(json), contentType: "application/json")
    }

    /// What the client is told about a credential failure: never whether an account exists.
    static func clientMessage(_ error: PolicyError) -> String {
        switch error.code {
        case .unknownAccount, .invalidCredentials, .credentialExpired, .unsupportedHashKind: "invalid username or password"
        default: error.message
        }
    }

    private func refuse(_ request: IncomingRequest, _ writer: ResponseWriter, realm: String, reason: String) async throws {
        observability.metrics.tokenIssuance(outcome: "refused")
        observability.audit.denied(account: "", peer: request.remoteAddress, method: request.head.method.rawValue, path: "/token", reason: reason, requestID: request.id)
        logger.warning(
            "authentication failed at the token endpoint",
            metadata: ["request": "\(request.id)", "peer": "\(request.remoteAddress)", "reason": "\(reason)"])
        try await writer.respond(
            .unauthorized,
            message: "authentication required: \(reason)",
            headers: ["www-authenticate": "Basic realm=\"\(realm)\""])
    }
}
