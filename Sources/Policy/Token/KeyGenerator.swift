import Crypto
import _CryptoExtras
import Foundation
import SwiftASN1
import X509

/// Creates token-signing keys with a self-signed certificate that a registry can use as its
/// `rootcertbundle`.
public enum KeyGenerator {
    /// The key types Portcullis generates.
    public enum Algorithm: String, Sendable, CaseIterable {
        /// ECDSA P-256 with SHA-256.
        case es256
        /// RSA 2048 with SHA-256.
        case rs256
    }

    /// A generated key pair, PEM encoded.
    public struct Output: Sendable {
        /// The private key (PKCS#8 for EC, PKCS#1 for RSA).
        public var privateKeyPEM: String
        /// The self-signed certificate.
        public var certificatePEM: String
    }

    /// Generates a key and a certificate valid from an hour before `now` for `validityDays`.
    /// - Throws: ``PolicyError/Code/invalidKey`` if the certificate cannot be built.
    public static func generate(
        _ algorithm: Algorithm,
        commonName: String = "portcullis token signer",
        now: Date,
        validityDays: Int = 3650
    ) throws -> Output {
        do {
            let privateKey: Certificate.PrivateKey
            let privateKeyPEM: String
            let signatureAlgorithm: Certificate.SignatureAlgorithm
            switch algorithm {
            case .es256:
                let key = P256.Signing.PrivateKey()
                privateKey = Certificate.PrivateKey(key)
                privateKeyPEM = key.pemRepresentation
                signatureAlgorithm = .ecdsaWithSHA256
            case .rs256:
                let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
                privateKey = Certificate.PrivateKey(key)
                privateKeyPEM = key.pemRepresentation
                signatureAlgorithm = .sha256WithRSAEncryption
            }
            let name = try DistinguishedName { CommonName(commonName) }
            let certificate = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: privateKey.publicKey,
                notValidBefore: now.addingTimeInterval(-3600),
                notValidAfter: now.addingTimeInterval(Double(validityDays) * 86_400),
                issuer: name,
                subject: name,
                signatureAlgorithm: signatureAlgorithm,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                    Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
                },
                issuerPrivateKey: privateKey
            )
            return Output(privateKeyPEM: privateKeyPEM, certificatePEM: try certificate.serializeAsPEM().pemString + "\n")
        } catch {
            throw PolicyError(.invalidKey, "cannot generate a \(algorithm.rawValue) key and certificate", underlying: error)
        }
    }
}
