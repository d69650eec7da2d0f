import Crypto
import _CryptoExtras
import JWTKit
import SwiftASN1
import X509

/// A public key of a kind the registries accept for token signing.
public enum PublicKeyMaterial: Sendable, Equatable {
    /// An ECDSA P-256 key (ES256).
    case p256(P256.Signing.PublicKey)
    /// An ECDSA P-384 key (ES384).
    case p384(P384.Signing.PublicKey)
    /// An RSA key (RS256).
    case rsa(_RSA.Signing.PublicKey)

    /// Wraps a certificate's public key.
    /// - Throws: ``PolicyError/Code/invalidKey`` for key types the registries cannot use (Ed25519, P-521).
    public init(_ key: Certificate.PublicKey) throws {
        if let p256 = P256.Signing.PublicKey(key) {
            self = .p256(p256)
        } else if let p384 = P384.Signing.PublicKey(key) {
            self = .p384(p384)
        } else if let rsa = _RSA.Signing.PublicKey(key) {
            self = .rsa(rsa)
        } else {
            throw PolicyError(.invalidKey, "unsupported key type \(key); use an ECDSA P-256/P-384 or RSA key")
        }
    }

    /// Reads the first PEM document of `pem`: a public key, a private key (PKCS#8, SEC1 or
    /// PKCS#1) or a certificate.
    /// - Throws: ``PolicyError/Code/invalidKey`` naming what could not be read.
    public init(pem: String) throws {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: pem)
        } catch {
            throw PolicyError(.invalidKey, "not a PEM file", underlying: error)
        }
        guard let document = documents.first else {
            throw PolicyError(.invalidKey, "no PEM document found")
        }
        do {
            switch document.discriminator {
            case "CERTIFICATE":
                try self.init(try Certificate(derEncoded: document.derBytes).publicKey)
            case "PUBLIC KEY":
                try self.init(try Certificate.PublicKey(derEncoded: document.derBytes))
            case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
                try self.init(try Certificate.PrivateKey(pemDocument: document).publicKey)
            default:
                throw PolicyError(.invalidKey, "unsupported PEM type \"\(document.discriminator)\"")
            }
        } catch let error as PolicyError {
            throw error
        } catch {
            throw PolicyError(.invalidKey, "cannot read the \(document.discriminator) PEM document", underlying: error)
        }
    }

    /// The key as swift-certificates sees it.
    public var certificatePublicKey: Certificate.PublicKey {
        switch self {
        case .p256(let key): Certificate.PublicKey(key)
        case .p384(let key): Certificate.PublicKey(key)
        case .rsa(let key): Certificate.PublicKey(key)
        }
    }

    /// The DER SubjectPublicKeyInfo (algorithm identifier and key), as libtrust hashes it.
    public var subjectPublicKeyInfo: [UInt8] {
        var serializer = DER.Serializer()
        // Serializing a well-formed key cannot fail.
        try! serializer.serialize(certificatePublicKey)
        return serializer.serializedBytes
    }

    /// The JWS algorithms this key can verify.
    public var algorithms: Set<String> {
        switch self {
        case .p256: ["ES256"]
        case .p384: ["ES384"]
        case .rsa: ["RS256", "RS384", "RS512"]
        }
    }

    /// The EC curve name in JWK form, `nil` for RSA.
    var curve: String? {
        switch self {
        case .p256: "P-256"
        case .p384: "P-384"
        case .rsa: nil
        }
    }

    /// The EC coordinates, each left-padded to the field size.
    var coordinates: (x: [UInt8], y: [UInt8])? {
        let raw: [UInt8]
        switch self {
        case .p256(let key): raw = Array(key.rawRepresentation)
        case .p384(let key): raw = Array(key.rawRepresentation)
        case .rsa: return nil
        }
        let half = raw.count / 2
        return (Array(raw[..<half]), Array(raw[half...]))
    }

    /// The RSA modulus and exponent, big-endian without leading zeros.
    var rsaPrimitives: (n: [UInt8], e: [UInt8])? {
        guard case .rsa(let key) = self,
            let primitives = try? Insecure.RSA.PublicKey(backing: key).getKeyPrimitives()
        else { return nil }
        return (Array(primitives.modulus).droppingLeadingZeros, Array(primitives.publicExponent).droppingLeadingZeros)
    }

    /// Verifies a JWS signature made with `algorithm` over `signingInput`.
    func isValidSignature(_ signature: [UInt8], algorithm: String, signingInput: [UInt8]) -> Bool {
        switch (self, algorithm) {
        case (.p256(let key), "ES256"):
            guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(signature, for: SHA256.hash(data: signingInput))
        case (.p384(let key), "ES384"):
            guard let signature = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(signature, for: SHA384.hash(data: signingInput))
        case (.rsa(let key), "RS256"):
            return key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: signingInput),
                padding: .insecurePKCS1v1_5)
        case (.rsa(let key), "RS384"):
            return key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA384.hash(data: signingInput),
                padding: .insecurePKCS1v1_5)
        case (.rsa(let key), "RS512"):
            return key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA512.hash(data: signingInput),
                padding: .insecurePKCS1v1_5)
        default:
            return false
        }
    }

    public static func == (lhs: PublicKeyMaterial, rhs: PublicKeyMaterial) -> Bool {
        lhs.subjectPublicKeyInfo == rhs.subjectPublicKeyInfo
    }
}

extension Array where Element == UInt8 {
    var droppingLeadingZeros: [UInt8] {
        let trimmed = Array(self.drop(while: { $0 == 0 }))
        return trimmed.isEmpty ? [0] : trimmed
    }
}
