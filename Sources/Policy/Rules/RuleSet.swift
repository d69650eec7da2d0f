/// The ordered rule list: first match wins, no match denies.
public struct RuleSet: Sendable {
    /// The rules in order.
    public var rules: [Rule]

    /// Creates a rule set.
    public init(_ rules: [Rule]) {
        self.rules = rules
    }

    /// Decides one requested scope.
    public func decide(_ requested: Scope, for identity: Identity) -> ScopeDecision {
        for (index, rule) in rules.enumerated() where rule.matches(requested.resource, for: identity) {
            return ScopeDecision(
                requested: requested,
                granted: requested.actions.intersection(rule.actions),
                ruleIndex: index,
                rule: rule.description
            )
        }
        return ScopeDecision(requested: requested, granted: [], ruleIndex: nil, rule: nil)
    }

    /// Decides every requested scope: the result grants requested ∩ allowed for each.
    public func grant(_ requested: [Scope], to identity: Identity) -> Grant {
        Grant(identity: identity, decisions: requested.map { decide($0, for: identity) })
    }
}
