import Foundation
import Logging
import NIOHTTP1
import Policy

/// The Docker token endpoint (`GET /token`).
///
/// Follows the Docker token specification: Basic credentials or none (anonymous), `service`
/// must be Portcullis's own, `scope` repeated and/or space separated. The token grants the
/// requested access that the rules allow; asking for more than one may have is not an error.
struct TokenEndpoint: Sendable {
    let state: StateHolder
    let cache: CredentialCache
    let logger: Logger

    func handle(_ request: IncomingRequest, writer: ResponseWriter) async throws {
        let state = state.current
        let configuration = state.configuration
        guard request.head.method == .GET || request.head.method == .HEAD else {
            try await writer.respond(
                status: .methodNotAllowed,
                error: RegistryErrorBody(code: "UNSUPPORTED", message: "the token endpoint answers GET"),
                headers: ["allow": "GET"])
            return
        }
        let parameters = QueryParameters(request.query ?? "")
        let service = parameters.first("service")
        guard service == configuration.token.service else {
            let message =
                service == nil
                ? "the service parameter is required (this token server serves \"\(configuration.token.service)\")"
                : "service \"\(service!)\" is not served here (expected \"\(configuration.token.service)\")"
            logger.warning("token request refused", metadata: ["request": "\(request.id)", "reason": "\(message)"])
            try await writer.respond(status: .badRequest, error: RegistryErrorBody(code: "UNSUPPORTED", message: message))
            return
        }
        let scopes: [Scope]
        do {
            scopes = try Scope.parseAll(parameters.values("scope"))
        } catch let error as PolicyError {
            logger.warning("token request refused", metadata: ["request": "\(request.id)", "reason": "\(error.message)"])
            try await writer.respond(status: .badRequest, error: RegistryErrorBody(code: "UNSUPPORTED", message: error.message))
            return
        }

        let identity: Identity
        let now = Date()
        switch PresentedCredential(request.head.headers) {
        case .none:
            identity = .anonymous
        case .basic(let account, let secret):
            if let requested = parameters.first("account"), !requested.isEmpty, requested != account {
                try await refuse(request, writer, realm: configuration.realm, reason: "account parameter \"\(requested)\" does not match the Basic credentials user \"\(account)\"", code: "account_mismatch")
                return
            }
            do {
                identity = try state.credentials.authenticate(
                    account: account, secret: secret, now: now.timeIntervalSince1970, cache: cache)
            } catch let error as PolicyError {
                try await refuse(request, writer, realm: configuration.realm, reason: error.message, code: error.code.rawValue)
                return
            }
        case .bearer:
            try await refuse(request, writer, realm: configuration.realm, reason: "the token endpoint takes Basic credentials, not a Bearer token", code: "bearer_at_token_endpoint")
            return
        case .malformed(let why):
            try await refuse(request, writer, realm: configuration.realm, reason: why, code: "malformed_authorization")
            return
        }

        let grant = state.rules.grant(scopes, to: identity)
        let claims = TokenClaims(
            issuer: configuration.token.issuer, subject: identity.account, audience: configuration.token.service,
            scopes: grant.scopes, now: now, lifetime: configuration.token.lifetime, id: UUID().uuidString)
        let token = try state.clientMinter.mint(claims)
        var metadata: Logger.Metadata = [
            "request": "\(request.id)", "account": "\(identity)",
            "granted": "\(grant.scopes.map(\.description).joined(separator: " "))",
        ]
        if !grant.isComplete {
            metadata["explanation"] = "\(grant.description)"
            logger.notice("token issued with less access than requested", metadata: metadata)
        } else {
            logger.info("token issued", metadata: metadata)
        }
        let issuedAt = ISO8601DateFormatter().string(from: claims.iat?.value ?? now)
        let body: [String: Any] = [
            "token": token, "access_token": token, "expires_in": configuration.token.lifetime, "issued_at": issuedAt,
        ]
        let json = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])
        try await writer.respond(
            status: .ok, headers: ["cache-control": "no-store"], body: Array(json), contentType: "application/json")
    }

    /// What the client is told: never whether an account exists.
    static func clientMessage(code: String, reason: String) -> String {
        let credentialCodes: Set<String> = [
            PolicyError.Code.unknownAccount.rawValue, PolicyError.Code.invalidCredentials.rawValue,
            PolicyError.Code.credentialExpired.rawValue, PolicyError.Code.unsupportedHashKind.rawValue,
        ]
        return credentialCodes.contains(code) ? "invalid username or password" : reason
    }

    private func refuse(_ request: IncomingRequest, _ writer: ResponseWriter, realm: String, reason: String, code: String) async throws {
        logger.warning(
            "authentication failed at the token endpoint",
            metadata: ["request": "\(request.id)", "peer": "\(request.remoteAddress)", "reason": "\(reason)", "code": "\(code)"])
        try await writer.respond(
            status: .unauthorized,
            error: RegistryErrorBody(code: "UNAUTHORIZED", message: "authentication required: \(Self.clientMessage(code: code, reason: reason))"),
            headers: ["www-authenticate": "Basic realm=\"\(realm)\""])
    }
}
