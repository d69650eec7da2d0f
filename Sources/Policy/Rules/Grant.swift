/// What a caller was granted for a set of requested scopes.
public struct Grant: Sendable, CustomStringConvertible {
    /// The caller.
    public var identity: Identity
    /// One decision per requested scope, in request order.
    public var decisions: [ScopeDecision]

    /// The scopes with at least one granted action, as they go into a token's `access` claim.
    public var scopes: [Scope] {
        decisions.compactMap { $0.granted.isEmpty ? nil : Scope(resource: $0.requested.resource, actions: $0.granted) }
    }

    /// Whether every requested scope was granted in full.
    public var isComplete: Bool {
        decisions.allSatisfy { $0.granted.satisfies($0.requested.actions) }
    }

    /// The scopes that were not granted in full, as they should appear in a challenge.
    public var missing: [Scope] {
        decisions.compactMap { $0.granted.satisfies($0.requested.actions) ? nil : $0.requested }
    }

    /// For each scope not granted in full, only the actions that were not granted (what
    /// `portcullis policy explain` names; a challenge names ``missing``, the scope as requested).
    public var missingActions: [Scope] {
        decisions.compactMap { decision in
            let lacking = decision.requested.actions.subtracting(decision.granted)
            return lacking.isEmpty ? nil : Scope(resource: decision.requested.resource, actions: lacking)
        }
    }

    /// One line per decision.
    public var description: String {
        "\(identity): " + decisions.map(\.description).joined(separator: "; ")
    }
}
