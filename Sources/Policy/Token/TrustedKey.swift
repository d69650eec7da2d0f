/// A public key that ``TokenVerifier`` accepts signatures from, and the names it goes by.
public struct TrustedKey: Sendable {
    /// The key.
    public var publicKey: PublicKeyMaterial
    /// Every `kid` value that names this key.
    public var keyIDs: Set<String>
    /// DER of the certificate that carries the key, matched against an `x5c` leaf.
    public var certificateDER: [UInt8]?

    /// Trusts a public key under the given ids (its libtrust and RFC 7638 forms are always added).
    public init(publicKey: PublicKeyMaterial, keyIDs: Set<String> = [], certificateDER: [UInt8]? = nil) {
        let identifiers = KeyIdentifiers(publicKey)
        self.publicKey = publicKey
        self.keyIDs = keyIDs.union([identifiers.libtrust, identifiers.rfc7638, identifiers.registry31])
        self.certificateDER = certificateDER
    }

    /// Trusts the public half of one of Portcullis's own signing keys.
    public init(_ key: SigningKey) {
        self.init(publicKey: key.publicKey, certificateDER: key.leafDER)
    }
}
