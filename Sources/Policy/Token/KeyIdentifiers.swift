import Crypto

/// The key ids the registries compute for a public key.
///
/// Each registry version derives a `kid` from the keys in its `rootcertbundle` and looks the
/// token's `kid` up among them, so Portcullis must compute exactly the same string.
public struct KeyIdentifiers: Sendable, Equatable {
    /// The libtrust fingerprint that distribution 2.x uses.
    public var libtrust: String
    /// The RFC 7638 JWK thumbprint.
    public var rfc7638: String
    /// What distribution 3.1 computes: RFC 7638 with EC coordinates stripped of leading zero bytes.
    public var registry31: String
    /// What distribution 3.0 computes, or why it cannot identify this key.
    public var registry30: Result<String, PolicyError>

    /// Computes every form for `key`.
    public init(_ key: PublicKeyMaterial) {
        self.libtrust = Self.libtrust(key)
        self.rfc7638 = Self.thumbprint(key, padCoordinates: true)
        self.registry31 = Self.thumbprint(key, padCoordinates: false)
        self.registry30 = Self.registry30(key)
    }

    /// The kid the pinned registry version expects for `key`.
    /// - Throws: ``PolicyError/Code/unsupportedKeyForRegistry`` for EC keys on 3.0.
    public func kid(for version: RegistryVersion) throws -> String {
        switch version {
        case .v2_8: libtrust
        case .v3_1: registry31
        case .v3_0: try registry30.get()
        }
    }

    /// SHA-256 over the DER SubjectPublicKeyInfo, first 240 bits, base32, twelve groups of four.
    static func libtrust(_ key: PublicKeyMaterial) -> String {
        let digest = Array(SHA256.hash(data: key.subjectPublicKeyInfo).prefix(30))
        let encoded = Array(Base32.encode(digest))
        return stride(from: 0, to: encoded.count, by: 4).map { String(encoded[$0..<min($0 + 4, encoded.count)]) }
            .joined(separator: ":")
    }

    /// The RFC 7638 thumbprint; with `padCoordinates: false`, EC coordinates lose leading zero
    /// bytes as Go's `big.Int.Bytes()` drops them.
    static func thumbprint(_ key: PublicKeyMaterial, padCoordinates: Bool) -> String {
        let members: String
        if let curve = key.curve, let (x, y) = key.coordinates {
            let xs = padCoordinates ? x : x.droppingLeadingZeros
            let ys = padCoordinates ? y : y.droppingLeadingZeros
            members = #"{"crv":"\#(curve)","kty":"EC","x":"\#(Base64URL.encode(xs))","y":"\#(Base64URL.encode(ys))"}"#
        } else if let (n, e) = key.rsaPrimitives {
            members = #"{"e":"\#(Base64URL.encode(e))","kty":"RSA","n":"\#(Base64URL.encode(n))"}"#
        } else {
            return ""
        }
        return Base64URL.encode(SHA256.hash(data: Array(members.utf8)))
    }

    /// distribution 3.0.0 hashes the curve's generator point instead of the key for EC keys.
    static func registry30(_ key: PublicKeyMaterial) -> Result<String, PolicyError> {
        switch key {
        case .rsa:
            return .success(thumbprint(key, padCoordinates: true))
        case .p256, .p384:
            let constant = key.curve == "P-256" ? Self.registry30P256 : Self.registry30P384
            return .failure(
                PolicyError(
                    .unsupportedKeyForRegistry,
                    "registry 3.0.0 gives every \(key.curve!) key the same kid (\(constant), the thumbprint of the curve's generator point), so it cannot tell EC keys apart; use key_hint x5c, or an RSA key"
                )
            )
        }
    }

    /// The kid 3.0.0 computes for every P-256 key.
    public static let registry30P256 = "xx0BcA-wMohw8atYDJOe6peGModklG2wRHBlXHMvl0M"
    /// The kid 3.0.0 computes for every P-384 key.
    public static let registry30P384 = "-W6Wzot_wuerYbKBVKfGEks3iY2EALna-hBqObnPuJE"
}
