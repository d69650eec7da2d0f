import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

/// A public key that signs images (`content[].signed_by`): cosign's `cosign.pub`, a PEM
/// `PUBLIC KEY` (ECDSA P-256, P-384 or P-521, RSA, or Ed25519).
///
/// A cosign signature carries no algorithm name; the key decides. ECDSA is checked over SHA-256
/// (what cosign before 2.6, skopeo and both their verifiers use) and then over the curve's own
/// hash (cosign 2.6 and later sign P-384 with SHA-384, P-521 with SHA-512); RSA is PKCS #1 v1.5
/// with SHA-256; Ed25519 is pure Ed25519. Accepting either hash is as safe as one: the key is pinned.
public struct SignatureKey: Sendable, CustomStringConvertible {
    enum Material: Sendable {
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case p521(P521.Signing.PublicKey)
        case rsa(_RSA.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
    }

    let material: Material
    /// Where the key came from (its file), as explanations name it.
    public let name: String
    /// The SHA-256 of the key's SubjectPublicKeyInfo: what a cached verification remembers, so
    /// a key changed on reload never counts for a signature another key verified.
    public let fingerprint: String

    /// Reads the first PEM `PUBLIC KEY` of `pem`.
    /// - Throws: ``PolicyError/Code/invalidKey`` naming what is wrong.
    public init(pem: String, name: String) throws(PolicyError) {
        let key: Certificate.PublicKey
        do {
            key = try Certificate.PublicKey(pemEncoded: pem)
        } catch {
            throw PolicyError(.invalidKey, "not a PEM PUBLIC KEY (cosign.pub: ECDSA P-256, P-384 or P-521, RSA, or Ed25519): \(error)")
        }
        if let inner = P256.Signing.PublicKey(key) {
            material = .p256(inner)
        } else if let inner = P384.Signing.PublicKey(key) {
            material = .p384(inner)
        } else if let inner = P521.Signing.PublicKey(key) {
            material = .p521(inner)
        } else if let inner = _RSA.Signing.PublicKey(key) {
            material = .rsa(inner)
        } else if let inner = Curve25519.Signing.PublicKey(key) {
            material = .ed25519(inner)
        } else {
            throw PolicyError(.invalidKey, "the key is of a kind cosign does not sign with (ECDSA P-256, P-384 or P-521, RSA, or Ed25519)")
        }
        self.name = name
        var serializer = DER.Serializer()
        self.fingerprint = (try? serializer.serialize(key)).map { ManifestDigest.sha256(serializer.serializedBytes) } ?? ManifestDigest.sha256(Array(pem.utf8))
    }

    /// `ECDSA P-256`, `RSA`, `Ed25519`…
    public var kind: String {
        switch material {
        case .p256: "ECDSA P-256"
        case .p384: "ECDSA P-384"
        case .p521: "ECDSA P-521"
        case .rsa: "RSA"
        case .ed25519: "Ed25519"
        }
    }

    public var description: String { "\(name) (\(kind))" }

    /// Whether `signature` (raw bytes: DER for ECDSA) is this key's signature over exactly `payload`.
    public func isValidSignature(_ signature: [UInt8], over payload: [UInt8]) -> Bool {
        switch material {
        case .p256(let key):
            guard let signature = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(signature, for: SHA256.hash(data: payload))
        case .p384(let key):
            guard let signature = try? P384.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(signature, for: SHA256.hash(data: payload)) || key.isValidSignature(signature, for: SHA384.hash(data: payload))
        case .p521(let key):
            guard let signature = try? P521.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(signature, for: SHA256.hash(data: payload)) || key.isValidSignature(signature, for: SHA512.hash(data: payload))
        case .rsa(let key):
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: payload), padding: .insecurePKCS1v1_5)
        case .ed25519(let key):
            return key.isValidSignature(signature, for: payload)
        }
    }
}
