import Crypto
import _CryptoExtras
import SwiftASN1
import X509

/// A private key Portcullis signs tokens with, and the certificate chain that vouches for it.
public struct SigningKey: Sendable {
    /// The JWS algorithm used with this key.
    public let algorithm: String
    /// The public half.
    public let publicKey: PublicKeyMaterial
    /// The certificate chain, leaf first (may be empty when no certificate was configured).
    public let certificateChain: [Certificate]
    /// Every key id the registries may compute for this key.
    public let identifiers: KeyIdentifiers
    private let privateKey: Backing

    private enum Backing: Sendable {
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
        case rsa(_RSA.Signing.PrivateKey)
    }

    /// Loads a private key and, optionally, its certificate chain (leaf first).
    /// - Throws: ``PolicyError/Code/invalidKey`` when the key cannot be read, is of an
    ///   unsupported type, or does not match the leaf certificate.
    public init(privateKeyPEM: String, certificateChainPEM: String? = nil) throws {
        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: privateKeyPEM)
        } catch {
            throw PolicyError(.invalidKey, "cannot read the private key (expected PEM: PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)", underlying: error)
        }
        let publicKey = try PublicKeyMaterial(key.publicKey)
        switch publicKey {
        case .p256:
            self.privateKey = .p256(try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM))
            self.algorithm = "ES256"
        case .p384:
            self.privateKey = .p384(try P384.Signing.PrivateKey(pemRepresentation: privateKeyPEM))
            self.algorithm = "ES384"
        case .rsa:
            self.privateKey = .rsa(try _RSA.Signing.PrivateKey(pemRepresentation: privateKeyPEM))
            self.algorithm = "RS256"
        }
        self.publicKey = publicKey
        self.identifiers = KeyIdentifiers(publicKey)
        var chain: [Certificate] = []
        if let certificateChainPEM {
            do {
                chain = try PEMDocument.parseMultiple(pemString: certificateChainPEM)
                    .filter { $0.discriminator == "CERTIFICATE" }
                    .map { try Certificate(derEncoded: $0.derBytes) }
            } catch {
                throw PolicyError(.invalidKey, "cannot read the certificate chain", underlying: error)
            }
            guard let leaf = chain.first else {
                throw PolicyError(.invalidKey, "the certificate file holds no CERTIFICATE block")
            }
            guard leaf.publicKey == publicKey.certificatePublicKey else {
                throw PolicyError(.invalidKey, "the first certificate (the leaf) does not belong to the private key")
            }
        }
        self.certificateChain = chain
    }

    /// The chain as `x5c` values: standard base64 of each certificate's DER, leaf first.
    public var x5c: [String] {
        certificateChain.compactMap { certificate in
            var serializer = DER.Serializer()
            guard (try? serializer.serialize(certificate)) != nil else { return nil }
            return Base64URL.standard(serializer.serializedBytes)
        }
    }

    /// The leaf certificate's DER bytes, `nil` without a certificate.
    public var leafDER: [UInt8]? {
        guard let leaf = certificateChain.first else { return nil }
        var serializer = DER.Serializer()
        guard (try? serializer.serialize(leaf)) != nil else { return nil }
        return serializer.serializedBytes
    }

    /// Signs a JWS signing input.
    package func sign(_ signingInput: [UInt8]) throws -> [UInt8] {
        switch privateKey {
        case .p256(let key):
            return Array(try key.signature(for: SHA256.hash(data: signingInput)).rawRepresentation)
        case .p384(let key):
            return Array(try key.signature(for: SHA384.hash(data: signingInput)).rawRepresentation)
        case .rsa(let key):
            return Array(try key.signature(for: SHA256.hash(data: signingInput), padding: .insecurePKCS1v1_5).rawRepresentation)
        }
    }
}
