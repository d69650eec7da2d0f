import Policy

/// The outcome of authorizing one registry API request (``RegistryAccess``): whether it goes to
/// the registry, with which account and access, or how it is refused.
struct RegistryAccessDecision: Sendable {
    /// What the decision says.
    enum Outcome: Sendable {
        /// Forward the request with an upstream token for ``RegistryAccessDecision/scopes``,
        /// once `check` (a content rule's question to the registry), if any, has passed.
        case granted(account: String, check: ContentCheck? = nil)
        /// Refuse the request (``RegistryAccessRefusal`` says how).
        case refused(RegistryAccessRefusal)
        /// A caller who may not list the whole catalog gets the repositories it may pull; when a
        /// rule denies the catalog outright, `otherwise` is the answer.
        case filteredCatalog(Identity, otherwise: RegistryAccessRefusal)
        /// Only from ``RegistryAccess/decideFromCaches(_:)``: a credential that is not in the
        /// caches has to be verified, which may wait; the request loop decides.
        case needsAsynchronousPath
    }

    /// The access the request needs (empty for `/v2/` and for a route rejected before).
    var scopes: [Scope]
    var outcome: Outcome
    /// The issuer of an external token that authorized the request, for the log line.
    var issuer: String? = nil
    /// A signature check answered from the caches: the verdict, and the digest the manifest is
    /// fetched by (the tag's, when the request named a tag).
    var signature: (verdict: SignatureVerdict, servedDigest: String)? = nil
}

/// How a registry API request is refused, with what its log line and audit record say.
struct RegistryAccessRefusal: Sendable {
    /// The answer the client gets.
    enum Answer: Sendable {
        /// 401 with a `WWW-Authenticate` challenge for the request's scopes; `failure` says why
        /// a presented credential was not good enough (none: no credential was presented).
        case challenge(Challenge.Failure?, message: String)
        /// The route or method is refused before any authorization.
        case rejected(RouteRejection)
        /// Too many failed authentications: 429 with `Retry-After`.
        case throttled(retryAfter: Int, reason: String)
        /// The directory that would decide did not answer: 503.
        case unavailable
        /// The caller may do this, but a content rule refuses it: 403 `DENIED` with the rule's reason.
        case denied(message: String)
    }

    var answer: Answer
    /// The request log's `outcome`, which is also the audit record's reason.
    var outcome: String
    /// The warning logged with the request's fields, when the refusal is logged here (the
    /// authenticator logs the failures it sees itself).
    var warning: String?
    /// The account the credential named, when the log line shows one.
    var account: String?
}
