import Policy
import PortcullisConfiguration
import SwiftASN1
import X509

/// The `issuers` section: external issuers whose tokens clients may present.
extension GatewayState {
    /// Each external issuer with the keys and roots its files hold, named `issuers[i]` in
    /// problems; none may be Portcullis's own `ownIssuer` (`token.issuer`).
    static func externalIssuers(
        _ external: [GatewayConfiguration.ExternalIssuer], ownIssuer: String, _ problems: inout StateProblems
    ) -> [TrustedIssuers.Issuer] {
        var issuers: [TrustedIssuers.Issuer] = []
        for (index, issuer) in external.enumerated() {
            let keyPath = "issuers[\(index)]"
            var keys: [TrustedKey] = []
            var roots: [Certificate] = []
            for (position, path) in issuer.certificates.enumerated() {
                guard let text = problems.read(path, "\(keyPath).certificates[\(position)]") else { continue }
                do {
                    for document in try PEMDocument.parseMultiple(pemString: text) where document.discriminator == "CERTIFICATE" {
                        let certificate = try Certificate(derEncoded: document.derBytes)
                        roots.append(certificate)
                        keys.append(TrustedKey(publicKey: try PublicKeyMaterial(certificate.publicKey), certificateDER: document.derBytes))
                    }
                } catch let error as PolicyError {
                    problems.problem("\(keyPath).certificates[\(position)]", "\(path): \(error.message)")
                } catch {
                    problems.problem("\(keyPath).certificates[\(position)]", "\(path): not a PEM certificate (\(error))")
                }
            }
            for (position, path) in issuer.publicKeys.enumerated() {
                guard let text = problems.read(path, "\(keyPath).public_keys[\(position)]") else { continue }
                do {
                    keys.append(TrustedKey(publicKey: try PublicKeyMaterial(pem: text)))
                } catch let error as PolicyError {
                    problems.problem("\(keyPath).public_keys[\(position)]", "\(path): \(error.message)")
                } catch {
                    problems.problem("\(keyPath).public_keys[\(position)]", "\(path): \(error)")
                }
            }
            if let path = issuer.jwks, let text = problems.read(path, "\(keyPath).jwks") {
                do {
                    for (kid, key) in try PublicKeyMaterial.parseJSONWebKeySet(Array(text.utf8)) {
                        keys.append(TrustedKey(publicKey: key, keyIDs: kid.map { [$0] } ?? []))
                    }
                } catch let error as PolicyError {
                    problems.problem("\(keyPath).jwks", "\(path): \(error.message)")
                } catch {
                    problems.problem("\(keyPath).jwks", "\(path): \(error)")
                }
            }
            if issuer.issuer == ownIssuer {
                problems.problem("\(keyPath).issuer", "\"\(issuer.issuer)\" is Portcullis's own token.issuer")
            }
            issuers.append(
                TrustedIssuers.Issuer(
                    verifier: TokenVerifier(issuer: issuer.issuer, audiences: Set(issuer.audiences), keys: keys, trustedRoots: roots),
                    trustAccessClaim: issuer.trustAccessClaim))
        }
        return issuers
    }
}
