/// The registry version Portcullis is pinned to, which decides how it announces its key.
public enum RegistryVersion: String, Sendable, CaseIterable, CustomStringConvertible {
    /// distribution 2.8.x: `kid` is a libtrust fingerprint; no `jwks` option.
    case v2_8 = "2.8"
    /// distribution 3.0.x: `kid` is an RFC 7638 thumbprint, broken for EC keys.
    case v3_0 = "3.0"
    /// distribution 3.1.x: `kid` is an RFC 7638 thumbprint without EC coordinate padding.
    case v3_1 = "3.1"

    /// Whether the registry reads a `jwks:` file.
    public var supportsJWKS: Bool { self != .v2_8 }

    /// Whether `aud` may be an array (2.8 accepts only a string; Portcullis always sends a string).
    public var acceptsAudienceArray: Bool { self != .v2_8 }

    public var description: String { rawValue }
}
