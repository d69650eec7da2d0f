import Policy

/// What `GET /token` comes to (``TokenEndpoint/decideFromCaches(query:headers:state:remoteAddress:requestID:)``
/// and ``TokenEndpoint/decide(query:headers:state:remoteAddress:requestID:)``): a token to issue, or how the request is refused.
enum TokenRequestDecision: Sendable {
    /// Issue a token for what the rules grant `identity` of `scopes` (a refresh token too when `offline`).
    case issue(Identity, scopes: [Scope], offline: Bool)
    /// The service or scope parameters are unusable: 400.
    case badRequest(String)
    /// The request cannot identify a caller (a Bearer token, a malformed header, an account
    /// parameter that contradicts the credentials): 401 with a Basic challenge.
    case refused(reason: String)
    /// The Basic credentials named `account` and failed.
    case failed(account: String, BasicAuthenticator.Failure)
    /// Only from the caches: the credential has to be verified, which may wait.
    case needsAsynchronousPath
}
