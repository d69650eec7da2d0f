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
    }

    let cache: CredentialCache
    let throttle: AuthenticationThrottle
    let logger: Logger
    let metrics: GatewayMetrics
    /// Keys of OIDC issuers fetched over HTTP; `nil` in commands that never verify identity tokens.
    var keyStore: OIDCKeyStore? = nil
    /// Re-reads the configuration's files if they changed since the last load, returning the
    /// newest state (``ConfigurationReloader/reloadIfChanged(reason:)``, else the one in force,
    /// which a periodic reload may have swapped in after the request took its own); `nil` in commands.
    var reloadIfChanged: (@Sendable () -> GatewayState?)? = nil
    /// The postgres state store: failures count for every replica. `nil` with the embedded store.
    var shared: SharedState? = nil

    /// Verifies `account`/`secret` presented from `address`.
    func authenticate(account: String, secret: String, address: String, state: GatewayState, requestID: String) async -> Result<Identity, Failure> {
        await authenticate(account: account, secret: secret, address: address, state: state, requestID: requestID, mayReload: true)
    }

    private func authenticate(
        account: String, secret: String, address: String, state: GatewayState, requestID: String, mayReload: Bool
    ) async -> Result<Identity, Failure> {
        let now = Date().timeIntervalSince1970
        if let refusal = throttled(account: account, address: address, now: now, requestID: requestID) { return .failure(refusal) }
        if let (issuer, token) = state.workloadIssuer(presentedAsPassword: secret) {
            return await authenticateWorkload(token, secret: secret, issuer: issuer, user: account, address: address, state: state, requestID: requestID)
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
            // An account Portcullis does not know may have been added a moment ago (`robot
            // create`, an htpasswd edit) and not polled yet: with the files re-read (only when
            // they changed), try once more before counting a failure.
            if error.code == .unknownAccount, mayReload, let reloadIfChanged,
                let fresh = try? await NIOThreadPool.singleton.runIfActive({ reloadIfChanged() }), fresh !== state
            {
                return await authenticate(account: account, secret: secret, address: address, state: fresh, requestID: requestID, mayReload: false)
            }
            let delay = throttle.recordFailure(account: account, address: address, now: now)
            await shared?.recordFailure(account: account, address: address, throttle: throttle)
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

    /// Verifies an OIDC issuer's identity token, presented as a Basic password by `user` (the
    /// issuer's `username`, if it names one, must match) or as a token exchange's subject token
    /// (`user` empty). Successes are cached until the token expires (at most a minute).
    func authenticateWorkload(
        _ token: UnverifiedToken, secret: String, issuer: WorkloadIssuer, user: String, address: String, state: GatewayState, requestID: String
    ) async -> Result<Identity, Failure> {
        let now = Date()
        let throttleKey = user.isEmpty ? "oidc:\(issuer.policy.issuer)" : user
        if !user.isEmpty, let identity = state.credentials.workloadLogins?.identity(account: user, password: secret, now: now.timeIntervalSince1970) {
            return .success(identity)
        }
        if let refusal = throttled(account: throttleKey, address: address, now: now.timeIntervalSince1970, requestID: requestID) {
            return .failure(refusal)
        }
        do {
            if let expected = issuer.username, !user.isEmpty, user != expected {
                throw PolicyError(.invalidToken, "logins with tokens of \(issuer.policy.issuer) use the user name \"\(expected)\", not \"\(user)\"")
            }
            guard let keyStore else { throw PolicyError(.directoryUnavailable, "no key store for OIDC issuers here") }
            var verified: (identity: Identity, expires: Double)
            do {
                verified = try await issuer.policy.identity(from: token, keys: try await keyStore.keys(of: issuer), now: now)
            } catch let error as PolicyError where error.code == .invalidToken && Self.mayBeRotation(error) {
                // The issuer may have rotated its keys since they were fetched: fetch once more.
                verified = try await issuer.policy.identity(from: token, keys: try await keyStore.keys(of: issuer, refresh: true), now: now)
            }
            throttle.recordSuccess(account: throttleKey)
            if !user.isEmpty {
                state.credentials.workloadLogins?.insert(
                    account: user, password: secret, identity: verified.identity, now: now.timeIntervalSince1970, notAfter: verified.expires)
            }
            return .success(verified.identity)
        } catch let error as PolicyError where error.code == .directoryUnavailable {
            metrics.authenticationFailure(reason: error.code.rawValue)
            logger.error(
                "authentication impossible: OIDC issuer keys unavailable",
                metadata: ["request": "\(requestID)", "issuer": "\(issuer.policy.issuer)", "peer": "\(address)", "reason": "\(error.message)"])
            return .failure(.unavailable(reason: error.message))
        } catch let error as PolicyError {
            let delay = throttle.recordFailure(account: throttleKey, address: address, now: now.timeIntervalSince1970)
            await shared?.recordFailure(account: throttleKey, address: address, throttle: throttle)
            metrics.authenticationFailure(reason: "invalid_identity_token")
            logger.warning(
                "identity token refused",
                metadata: ["request": "\(requestID)", "issuer": "\(issuer.policy.issuer)", "peer": "\(address)", "reason": "\(error.message)"])
            try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            return .failure(.invalid(PolicyError(.invalidToken, "identity token refused: \(error.message)")))
        } catch {
            return .failure(.invalid(PolicyError(.invalidToken, "identity token refused: \(error)")))
        }
    }

    /// The refusal (logged at warning, counted) when `account` or `address` is throttled now.
    private func throttled(account: String, address: String, now: Double, requestID: String) -> Failure? {
        guard case .refused(let retryAfter, let reason) = throttle.check(account: account, address: address, now: now) else { return nil }
        logger.warning(
            "authentication throttled",
            metadata: ["request": "\(requestID)", "account": "\(account)", "peer": "\(address)", "reason": "\(reason)", "retry_after": "\(retryAfter)"])
        metrics.authenticationFailure(reason: "throttled")
        return .throttled(retryAfter: retryAfter, reason: reason)
    }

    /// Whether a refusal could come from keys fetched before the issuer rotated them.
    private static func mayBeRotation(_ error: PolicyError) -> Bool {
        error.message.contains("names no trusted key") || error.message.contains("signature does not verify")
    }
}
