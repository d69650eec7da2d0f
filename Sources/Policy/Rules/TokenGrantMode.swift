/// How much a token grants on the repositories a client asked about (`token.grant`).
public enum TokenGrantMode: String, Sendable, CaseIterable {
    /// Exactly what was requested, as far as the rules allow (the Docker token protocol's reading).
    case requested
    /// On each requested repository, every action the rules allow the account there, whatever
    /// actions were requested: for clients that fetch one token for the first challenge and
    /// resend it on later ones (oras-py), at the price of tokens wider than the request.
    case repository
}

extension RuleSet {
    /// Decides every requested scope in `mode`. With ``TokenGrantMode/repository`` a repository
    /// scope is decided as if pull, push and delete had been asked for; its decision still names
    /// the scope as requested, so ``Grant/isComplete`` and ``Grant/missing`` judge the request.
    public func grant(_ requested: [Scope], to identity: Identity, mode: TokenGrantMode) -> Grant {
        guard mode == .repository else { return grant(requested, to: identity) }
        return Grant(
            identity: identity,
            decisions: requested.map { scope in
                guard scope.resource.type == Resource.repositoryType else { return decide(scope, for: identity) }
                var decision = decide(Scope(resource: scope.resource, actions: scope.actions.union([.pull, .push, .delete])), for: identity)
                decision.requested = scope
                return decision
            })
    }
}
