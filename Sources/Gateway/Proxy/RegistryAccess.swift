import Foundation
import NIOHTTP1
import Policy

/// The one authorization decision for a registry API request: route → identity → decision.
///
/// The event loop's fast path (``ProxyHandler/admit(_:client:)``) and the request loop
/// (``ProxyHandler/handle(_:writer:)``) both ask it; they differ only in how the caller is
/// identified. ``decideFromCaches(_:)`` never waits: a credential it cannot verify from the
/// caches gives ``RegistryAccessDecision/Outcome/needsAsynchronousPath``. ``decide(_:)``
/// verifies it however long that takes. The decision about the identified caller is the same
/// function on both paths, so a rule cannot hold on one and be forgotten on the other.
struct RegistryAccess: Sendable {
    let state: GatewayState
    let authenticator: BasicAuthenticator
    /// What signature checks are known, for the decision from the caches.
    var signatures: SignatureCaches? = nil

    /// A request as the decision sees it.
    struct Request: Sendable {
        var method: HTTPMethod
        var path: String
        var query: String?
        var headers: HTTPHeaders
        var remoteAddress: String
        var requestID: String
        /// The path's route, when the caller has parsed it already (it is parsed once).
        var route: Route? = nil
    }

    /// The caller, once identified.
    enum Caller: Sendable {
        /// A verified Bearer token and the issuer that signed it.
        case token(TokenClaims, TrustedIssuers.Issuer)
        /// Verified Basic credentials.
        case identity(Identity)
    }

    /// What identification came to.
    private enum Identification {
        case identified(Caller)
        case refused(RegistryAccessRefusal)
        /// The credential has to be verified, which may wait.
        case pending
    }

    /// The decision from the caches alone, for the event loop.
    func decideFromCaches(_ request: Request) -> RegistryAccessDecision {
        let scopes: [Scope]
        switch requiredAccess(request) {
        case .decided(let decision): return decision
        case .scopes(let list): scopes = list
        }
        switch identifyFromCaches(request) {
        case .identified(let caller):
            var decision = authorize(caller, scopes: scopes, request: request)
            switch decision.outcome {
            case .granted(let account, .signature(let repository, let reference, let rule)?):
                // A signature check the caches answer costs a lookup; anything else waits.
                guard let known = knownSignature(of: reference, in: repository, rule: rule), known.verdict.isVerified else {
                    return RegistryAccessDecision(scopes: scopes, outcome: .needsAsynchronousPath)
                }
                decision.outcome = .granted(account: account, check: nil)
                decision.signature = known
                return decision
            case .granted(_, .some):
                // A content rule's question to the registry is asked from the request loop.
                return RegistryAccessDecision(scopes: scopes, outcome: .needsAsynchronousPath)
            default:
                return decision
            }
        case .refused(let refusal): return RegistryAccessDecision(scopes: scopes, outcome: .refused(refusal))
        case .pending: return RegistryAccessDecision(scopes: scopes, outcome: .needsAsynchronousPath)
        }
    }

    /// The decision with every credential verified, for the request loop.
    func decide(_ request: Request) async -> RegistryAccessDecision {
        let scopes: [Scope]
        switch requiredAccess(request) {
        case .decided(let decision): return decision
        case .scopes(let list): scopes = list
        }
        let identification: Identification
        switch identifyFromCaches(request) {
        case .pending: identification = await identify(request)
        case let other: identification = other
        }
        switch identification {
        case .identified(let caller): return authorize(caller, scopes: scopes, request: request)
        case .refused(let refusal): return RegistryAccessDecision(scopes: scopes, outcome: .refused(refusal))
        case .pending: return RegistryAccessDecision(scopes: scopes, outcome: .needsAsynchronousPath)
        }
    }

    // MARK: Route

    private enum Required {
        case scopes([Scope])
        case decided(RegistryAccessDecision)
    }

    /// The access the route needs, or its rejection.
    private func requiredAccess(_ request: Request) -> Required {
        let method = request.method.rawValue
        let required =
            if let route = request.route, request.method == .GET || request.method == .HEAD {
                AccessMap.requiredAccess(method: method, route: route, query: request.query)
            } else {
                AccessMap.requiredAccess(
                    method: method, path: request.path, query: request.query, contentType: request.headers.first(name: "content-type"))
            }
        switch required {
        case .rejected(let rejection):
            return .decided(
                RegistryAccessDecision(
                    scopes: [],
                    outcome: .refused(
                        RegistryAccessRefusal(
                            answer: .rejected(rejection), outcome: "rejected: \(rejection.reason)", warning: "request refused before authorization"))))
        case .authenticated: return .scopes([])
        case .scopes(let list): return .scopes(list)
        }
    }

    // MARK: Identity

    /// Identifies the caller from what is at hand: a token already verified, a Basic
    /// credential whose check is cached (and not throttled), or no usable credential at all.
    private func identifyFromCaches(_ request: Request) -> Identification {
        switch PresentedCredential(request.headers) {
        case .none:
            return .refused(RegistryAccessRefusal(answer: .challenge(nil, message: "authentication required"), outcome: "challenged: no credentials"))
        case .malformed(let why):
            return .refused(RegistryAccessRefusal(answer: .challenge(.invalidToken, message: why), outcome: "refused: \(why)", warning: "authentication failed"))
        case .bearer(let token):
            guard let (claims, issuer) = state.cachedClientToken(token, now: Date()) else { return .pending }
            return .identified(.token(claims, issuer))
        case .basic(let user, let secret):
            let now = Date().timeIntervalSince1970
            guard state.credentials.isCheapToVerify(account: user, secret: secret, now: now, cache: authenticator.cache),
                case .allowed = authenticator.throttle.check(account: user, address: request.remoteAddress, now: now),
                let identity = try? state.credentials.authenticate(account: user, secret: secret, now: now, cache: authenticator.cache)
            else { return .pending }
            authenticator.throttle.recordSuccess(account: user)
            return .identified(.identity(identity))
        }
    }

    /// Identifies the caller, verifying its credential however long that takes.
    private func identify(_ request: Request) async -> Identification {
        switch PresentedCredential(request.headers) {
        case .none, .malformed:
            return identifyFromCaches(request)
        case .bearer(let token):
            do {
                let (claims, issuer) = try await state.verifyClientToken(token, now: Date())
                return .identified(.token(claims, issuer))
            } catch let error as PolicyError {
                return .refused(
                    RegistryAccessRefusal(
                        answer: .challenge(.invalidToken, message: "invalid token: \(error.message)"), outcome: "refused: \(error.message)",
                        warning: "token rejected"))
            } catch {
                return .refused(
                    RegistryAccessRefusal(
                        answer: .challenge(.invalidToken, message: "invalid token: \(error)"), outcome: "refused: \(error)", warning: "token rejected"))
            }
        case .basic(let user, let secret):
            switch await authenticator.authenticate(account: user, secret: secret, address: request.remoteAddress, state: state, requestID: request.requestID) {
            case .success(let identity):
                return .identified(.identity(identity))
            case .failure(.throttled(let retryAfter, let reason)):
                return .refused(RegistryAccessRefusal(answer: .throttled(retryAfter: retryAfter, reason: reason), outcome: "throttled: \(reason)", account: user))
            case .failure(.invalid(let error)):
                return .refused(
                    RegistryAccessRefusal(
                        answer: .challenge(.invalidToken, message: TokenEndpoint.clientMessage(error)), outcome: "refused: \(error.message)", account: user))
            case .failure(.unavailable(let reason)):
                return .refused(RegistryAccessRefusal(answer: .unavailable, outcome: "unavailable: \(reason)", account: user))
            }
        }
    }

    // MARK: Decision

    /// Whether the identified caller may do what the request needs, and what content rules say
    /// of it. Pure: the same on both paths.
    func authorize(_ caller: Caller, scopes: [Scope], request: Request) -> RegistryAccessDecision {
        var decision = authorize(caller, scopes: scopes)
        if case .granted(let account, _) = decision.outcome, let check = contentCheck(request, caller: caller) {
            if case .refused(let refusal) = check {
                decision.outcome = .refused(
                    RegistryAccessRefusal(
                        answer: .denied(message: refusal.description), outcome: "content rule: \(refusal)", warning: "refused by a content rule",
                        account: account))
            } else {
                decision.outcome = .granted(account: account, check: check)
            }
        }
        return decision
    }

    /// What `content:` needs checked of the request (manifest requests only).
    private func contentCheck(_ request: Request, caller: Caller) -> ContentCheck? {
        let rules = state.contentRules
        guard !rules.isEmpty, let route = request.route ?? (try? Route(path: request.path)) else { return nil }
        return rules.check(method: request.method.rawValue, route: route) {
            // A caller whose credential may push to the repository is not held to signatures.
            guard let repository = route.repository?.value else { return false }
            let push = Scope(resource: Resource(type: Resource.repositoryType, name: repository), actions: .push)
            switch caller {
            case .identity(let identity):
                return state.rules.grant([push], to: identity).isComplete
            case .token(let claims, let issuer):
                // The token's own access first (a scan of its claim); the rules only when it carries push.
                guard claims.scopes.contains(where: { $0.resource == push.resource && $0.actions.satisfies(.push) }) else { return false }
                return Self.missingAccess([push], claims: claims, issuer: issuer, rules: state.rules).isEmpty
            }
        }
    }

    /// The verdict on `reference` the caches hold, with the digest it is served by.
    private func knownSignature(of reference: String, in repository: RepositoryName, rule: ContentRule) -> (verdict: SignatureVerdict, servedDigest: String)? {
        guard let signatures else { return nil }
        let now = Date().timeIntervalSince1970
        let digest = reference.contains(":") ? reference : signatures.digest(ofTag: reference, in: repository.value, now: now)
        guard let digest, let verdict = signatures.verdict(digest, in: repository.value, keys: rule.signedByFingerprints, now: now) else { return nil }
        return (verdict, digest)
    }

    /// Whether the identified caller may do what the request needs.
    private func authorize(_ caller: Caller, scopes: [Scope]) -> RegistryAccessDecision {
        switch caller {
        case .token(let claims, let issuer):
            let account = claims.sub.value
            let issuerName = issuer.isPortcullis ? nil : issuer.verifier.issuer
            let missing = Self.missingAccess(scopes, claims: claims, issuer: issuer, rules: state.rules)
            guard !missing.isEmpty else { return RegistryAccessDecision(scopes: scopes, outcome: .granted(account: account), issuer: issuerName) }
            let refusal = RegistryAccessRefusal(
                answer: .challenge(.insufficientScope, message: "access to the resource is denied"),
                outcome: "denied: \(issuer.isPortcullis ? "token" : "token or rules") lack \(missing.map(\.description).joined(separator: " "))",
                warning: "insufficient scope", account: account)
            if scopes == [ProxyHandler.catalogScope] {
                let identity =
                    (try? state.credentials.currentIdentity(account: account, now: Date().timeIntervalSince1970))
                    ?? Identity(account: account, kind: account.isEmpty ? .anonymous : .user)
                return RegistryAccessDecision(scopes: scopes, outcome: .filteredCatalog(identity, otherwise: refusal), issuer: issuerName)
            }
            return RegistryAccessDecision(scopes: scopes, outcome: .refused(refusal), issuer: issuerName)
        case .identity(let identity):
            let grant = state.rules.grant(scopes, to: identity)
            guard !grant.isComplete else { return RegistryAccessDecision(scopes: scopes, outcome: .granted(account: identity.account)) }
            let refusal = RegistryAccessRefusal(
                answer: .challenge(.insufficientScope, message: "access to the resource is denied"), outcome: "denied: \(grant.description)",
                warning: "insufficient access", account: identity.account)
            if scopes == [ProxyHandler.catalogScope] {
                return RegistryAccessDecision(scopes: scopes, outcome: .filteredCatalog(identity, otherwise: refusal))
            }
            return RegistryAccessDecision(scopes: scopes, outcome: .refused(refusal))
        }
    }

    /// The access in `scopes` that a verified token does not grant: beyond its access claim, or
    /// (for an external issuer whose claim is not taken as is) beyond the rules for its subject.
    static func missingAccess(_ scopes: [Scope], claims: TokenClaims, issuer: TrustedIssuers.Issuer, rules: RuleSet) -> [Scope] {
        let granted = claims.scopes
        var missing = scopes.filter { needed in
            !granted.contains { $0.resource == needed.resource && $0.actions.satisfies(needed.actions) }
        }
        if !issuer.trustAccessClaim {
            let grant = rules.grant(scopes, to: Identity(account: claims.sub.value, kind: .user))
            missing += grant.missing.filter { !missing.contains($0) }
        }
        return missing
    }
}
