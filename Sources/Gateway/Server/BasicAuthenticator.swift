import Foundation
import Logging
import NIOPosix
import Policy

/// Verifies Basic credentials for the token endpoint and the proxy alike: throttled, cached,
/// failures logged at warning with their reason.
struct BasicAuthenticator: Sendable {
    /// Why an attempt failed.
    enum Failure: Error {
        /// Too many failures: answer 429 with `Retry-After`.
        case throttled(retryAfter: Int, reason: String)
        /// The credentials are wrong.
        case invalid(PolicyError)
        /// The directory that would decide (LDAP) did not answer: neither accepted nor refused,
        /// so the client gets a 503 and no throttling failure is counted.
        case unavailable(reason: String)

        /// What the client is told for ``unavailable(reason:)``; the reason stays in the log.
        static let unavailableMessage = "the account directory is unavailable, try again later"
        /// The OCI error body for the 503 of ``unavailable(reason:)``.
        static let unavailableBody = RegistryErrorBody(code: "UNAVAILABLE", message: unavailableMessage)
    }

    let cache: CredentialCache
    let throttle: AuthenticationThrottle
    let logger: Logger
    let metrics: GatewayMetrics

    /// Verifies `account`/`secret` presented from `address`.
    func authenticate(account: String, secret: String, address: String, state: GatewayState, requestID: String) async -> Result<Identity, Failure> {
        let now = Date().timeIntervalSince1970
        if case .refused(let retryAfter, let reason) = throttle.check(account: account, address: address, now: now) {
            logger.warning(
                "authentication throttled",
                metadata: ["request": "\(requestID)", "account": "\(account)", "peer": "\(address)", "reason": "\(reason)", "retry_after": "\(retryAfter)"])
            metrics.authenticationFailure(reason: "throttled")
            return .failure(.throttled(retryAfter: retryAfter, reason: reason))
        }
        do {
            // bcrypt takes tens of milliseconds: run it on NIO's blocking pool, never on the
            // few threads that serve every other request.
            let credentials = state.credentials
            let cache = self.cache
            let identity: Identity
            if credentials.isCheapToVerify(account: account, secret: secret, now: now, cache: cache) {
                identity = try credentials.authenticate(account: account, secret: secret, now: now, cache: cache)
            } else {
                identity = try await NIOThreadPool.singleton.runIfActive {
                    try credentials.authenticate(account: account, secret: secret, now: now, cache: cache)
                }
            }
            throttle.recordSuccess(account: account)
            return .success(identity)
        } catch let error as PolicyError where error.code == .directoryUnavailable {
            metrics.authenticationFailure(reason: error.code.rawValue)
            logger.error(
                "authentication impossible: directory unavailable",
                metadata: ["request": "\(requestID)", "account": "\(account)", "peer": "\(address)", "reason": "\(error.message)"])
            return .failure(.unavailable(reason: error.message))
        } catch let error as PolicyError {
            let delay = throttle.recordFailure(account: account, address: address, now: now)
            metrics.authenticationFailure(reason: error.code.rawValue)
            logger.warning(
                "authentication failed",
                metadata: ["request": "\(requestID)", "account": "\(account)", "peer": "\(address)", "reason": "\(error.message)", "code": "\(error.code.rawValue)"])
            try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            return .failure(.invalid(error))
        } catch {
            return .failure(.invalid(PolicyError(.invalidCredentials, "\(error)")))
        }
    }
}
