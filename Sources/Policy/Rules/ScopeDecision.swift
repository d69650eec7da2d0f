/// How the rule list answered one requested scope.
public struct ScopeDecision: Sendable, CustomStringConvertible {
    /// What was asked for.
    public var requested: Scope
    /// What was granted: the requested actions the deciding rule allows (possibly none).
    public var granted: ActionSet
    /// The position (0-based) of the deciding rule, `nil` when no rule matched.
    public var ruleIndex: Int?
    /// The deciding rule as written, for explanations.
    public var rule: String?

    /// A sentence saying which rule decided and what came of it.
    public var description: String {
        let outcome = granted.isEmpty ? "nothing granted" : "granted \(granted)"
        guard let ruleIndex, let rule else {
            return "\(requested): no rule matched; \(outcome)"
        }
        return "\(requested): rule #\(ruleIndex + 1) \(rule) decided; \(outcome)"
    }
}
