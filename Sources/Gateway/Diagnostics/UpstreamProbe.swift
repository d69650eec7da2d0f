import AsyncHTTPClient
import Foundation
import NIOCore
import Policy

/// Asks the registry whether it accepts a token Portcullis mints, by sending `GET /v2/` with it.
struct UpstreamProbe: Sendable {
    /// What the registry answered.
    enum Outcome: Sendable, Equatable {
        /// 200: the token was accepted.
        case accepted
        /// 401: the token was refused; the registry's challenge.
        case rejected(challenge: String)
        /// No answer; why.
        case unreachable(String)
        /// Some other status.
        case unexpected(status: Int)

        var isAccepted: Bool { self == .accepted }
    }

    let client: HTTPClient

    /// Sends `GET /v2/` with `token` (or none).
    func check(upstream: String, token: String?, timeout: TimeAmount = .seconds(5)) async -> Outcome {
        var request = HTTPClientRequest(url: upstream + "/v2/")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        do {
            let response = try await client.execute(request, timeout: timeout)
            _ = try? await response.body.collect(upTo: 64 * 1024)
            switch response.status.code {
            case 200: return .accepted
            case 401: return .rejected(challenge: response.headers["www-authenticate"].joined(separator: ", "))
            default: return .unexpected(status: Int(response.status.code))
            }
        } catch {
            return .unreachable(ConnectionFailure.describe(error))
        }
    }

    /// Mints a token with `minter` for no access, as the readiness check and `doctor` send it.
    static func probeToken(_ state: GatewayState, minter: TokenMinter? = nil, upstream target: UpstreamTarget? = nil, now: Date = Date()) throws -> String {
        let upstream = (target ?? state.primaryUpstream).configuration
        return try (minter ?? target?.minter ?? state.upstreamMinter).mint(
            TokenClaims(
                issuer: upstream.issuer, subject: "portcullis-probe", audience: upstream.service, scopes: [], now: now,
                lifetime: 60, id: UUID().uuidString))
    }
}
