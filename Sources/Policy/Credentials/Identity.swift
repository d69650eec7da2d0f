/// Who is making a request, once their credentials have been verified.
public struct Identity: Hashable, Sendable, CustomStringConvertible {
    /// How the identity was established.
    public enum Kind: String, Hashable, Sendable {
        /// An htpasswd user.
        case user
        /// A robot credential, for automation.
        case robot
        /// A directory account (`users.ldap`), verified by an LDAP bind; its groups are labels.
        case ldap
        /// A workload (CI job) that presented a signed identity token of an OIDC issuer (`users.oidc`).
        case oidc
        /// No credentials were presented.
        case anonymous
    }

    /// The account name that rules match and tokens carry as `sub` (empty for anonymous).
    public var account: String
    /// How the identity was established.
    public var kind: Kind
    /// Labels attached to the credential (name → values), usable in rules.
    public var labels: [String: [String]]

    /// Creates an identity.
    public init(account: String, kind: Kind, labels: [String: [String]] = [:]) {
        self.account = account
        self.kind = kind
        self.labels = labels
    }

    /// The identity of a caller that presented no credentials.
    public static let anonymous = Identity(account: "", kind: .anonymous)

    public var description: String {
        kind == .anonymous ? "anonymous" : "\(kind.rawValue) \(account)"
    }
}
