import Policy
import PortcullisConfiguration

/// The `token` section: the signing keys of Portcullis's own tokens.
extension GatewayState {
    /// `token.key` with `token.certificate`: the key client and upstream tokens are signed with;
    /// `nil`, with a problem, when it cannot be used.
    static func signingKey(_ token: GatewayConfiguration.Token, _ problems: inout StateProblems) -> SigningKey? {
        var signingKey: SigningKey?
        if let keyPEM = problems.read(token.key, "token.key") {
            let chainPEM = token.certificate.flatMap { problems.read($0, "token.certificate") }
            do {
                signingKey = try SigningKey(privateKeyPEM: keyPEM, certificateChainPEM: chainPEM)
            } catch let error as PolicyError {
                problems.problem(token.certificate != nil && error.message.contains("certificate") ? "token.certificate" : "token.key", error.message)
            } catch {
                problems.problem("token.key", "\(error)")
            }
        }
        return signingKey
    }

    /// `token.next_key` with `token.next_certificate`: the key that will replace the signing
    /// key, already trusted and announced; `nil` when there is none or it cannot be used.
    static func nextKey(_ token: GatewayConfiguration.Token, _ problems: inout StateProblems) -> SigningKey? {
        var nextKey: SigningKey?
        if let keyPath = token.nextKey, let keyPEM = problems.read(keyPath, "token.next_key") {
            let chainPEM = token.nextCertificate.flatMap { problems.read($0, "token.next_certificate") }
            do {
                nextKey = try SigningKey(privateKeyPEM: keyPEM, certificateChainPEM: chainPEM)
            } catch let error as PolicyError {
                problems.problem("token.next_key", error.message)
            } catch {
                problems.problem("token.next_key", "\(error)")
            }
        }
        return nextKey
    }

    /// Mints Portcullis's client tokens with `signingKey`, announced by its RFC 7638 `kid`.
    static func clientMinter(_ signingKey: SigningKey?) -> TokenMinter? {
        signingKey.flatMap { try? TokenMinter(key: $0, hint: .jwks(kid: $0.identifiers.rfc7638)) }
    }

    /// Portcullis itself as a trusted issuer: its tokens verified with the signing key, the next
    /// key and the keys of before a rotation (`previousKeys`, without the signing key).
    static func ownIssuer(
        _ token: GatewayConfiguration.Token, signingKey: SigningKey, nextKey: SigningKey?, previousKeys: [TrustedKey]
    ) -> TrustedIssuers.Issuer {
        TrustedIssuers.Issuer(
            verifier: TokenVerifier(
                issuer: token.issuer, audience: token.service,
                keys: [TrustedKey(signingKey)] + (nextKey.map { [TrustedKey($0)] } ?? []) + previousKeys),
            trustAccessClaim: true, isPortcullis: true)
    }
}
