/// How a token's JOSE header tells the registry which key signed it.
public enum KeyHint: Hashable, Sendable, CustomStringConvertible {
    /// An `x5c` chain, leaf first, that chains to the registry's `rootcertbundle`.
    /// Accepted by 2.8, 3.0 and 3.1 alike.
    case x5c
    /// A `kid` computed the way the pinned registry version computes it from its
    /// `rootcertbundle` (libtrust for 2.8, RFC 7638 thumbprint for 3.x).
    case kid(RegistryVersion)
    /// An explicit `kid` naming a key in the registry's `jwks:` file (3.x only).
    case jwks(kid: String)

    /// The header members a token minted with this hint carries besides `alg` and `typ`.
    public var headerMember: String {
        switch self {
        case .x5c: "x5c"
        case .kid, .jwks: "kid"
        }
    }

    public var description: String {
        switch self {
        case .x5c: "x5c"
        case .kid(let version): "kid (registry \(version))"
        case .jwks(let kid): "jwks kid \(kid)"
        }
    }
}
