import Foundation
import SwiftASN1
import X509

/// Verifies registry tokens from one issuer, failing closed.
///
/// A token passes only if it is a well-formed compact JWS no larger than
/// ``maximumTokenSize``; its header names a trusted key, in the order the registries look
/// (an `x5c` chain first, final when present; then `kid`; then an embedded `jwk` equal to a
/// trusted key; there is no default key to fall back to); its `alg` is one that key can
/// produce (never `none`, never HMAC); the signature verifies; `iss` equals ``issuer``; `aud`
/// contains one of ``audiences``; and `exp`/`nbf` hold at the given time with ``leeway``
/// seconds of slack.
public struct TokenVerifier: Sendable {
    /// The only `iss` accepted.
    public var issuer: String
    /// The `aud` values accepted; one must be present.
    public var audiences: Set<String>
    /// The keys signatures are accepted from.
    public var keys: [TrustedKey]
    /// Certificates an `x5c` chain may lead to (besides the certificates of ``keys``).
    public var trustedRoots: [Certificate]
    /// Clock slack for `exp` and `nbf`, in seconds (the registries use 60).
    public var leeway: Double
    /// Tokens longer than this are refused before parsing.
    public var maximumTokenSize: Int
    /// Whether a token whose header names no key (no `x5c`, `kid` or `jwk`) is checked against
    /// each trusted key that fits its `alg`. Off for registry tokens (the registries have no
    /// default key); on for an OIDC issuer's own key set.
    public var searchesKeysWithoutKid = false

    /// Creates a verifier for one audience.
    public init(issuer: String, audience: String, keys: [TrustedKey], leeway: Double = 60, maximumTokenSize: Int = 16 * 1024) {
        self.init(issuer: issuer, audiences: [audience], keys: keys, leeway: leeway, maximumTokenSize: maximumTokenSize)
    }

    /// Creates a verifier.
    public init(
        issuer: String, audiences: Set<String>, keys: [TrustedKey], trustedRoots: [Certificate] = [], leeway: Double = 60,
        maximumTokenSize: Int = 16 * 1024
    ) {
        self.issuer = issuer
        self.audiences = audiences
        self.keys = keys
        self.trustedRoots = trustedRoots
        self.leeway = leeway
        self.maximumTokenSize = maximumTokenSize
    }

    /// Verifies `token` at time `now`.
    /// - Returns: the token's claims.
    /// - Throws: ``PolicyError/Code/invalidToken`` whose message is the reason, for the log.
    public func verify(_ token: String, now: Date) async throws -> TokenClaims {
        try await verify(try UnverifiedToken(token, maximumSize: maximumTokenSize), now: now)
    }

    /// Verifies an already split token at time `now`.
    public func verify(_ token: UnverifiedToken, now: Date) async throws -> TokenClaims {
        func reject(_ reason: String) -> PolicyError { PolicyError(.invalidToken, reason) }
        try await verifySignature(token, now: now)

        let claims = try token.claims()
        guard claims.iss.value == issuer else {
            throw reject("iss \"\(claims.iss.value)\" is not the expected issuer \"\(issuer)\"")
        }
        guard claims.aud.value.contains(where: audiences.contains) else {
            throw reject("aud \(claims.aud.value) contains none of \(audiences.sorted())")
        }
        let time = now.timeIntervalSince1970
        guard time < claims.exp.value.timeIntervalSince1970 + leeway else {
            throw reject("token expired at \(Int(claims.exp.value.timeIntervalSince1970)) (now \(Int(time)), leeway \(Int(leeway)) s)")
        }
        if let nbf = claims.nbf, time + leeway < nbf.value.timeIntervalSince1970 {
            throw reject("token not valid before \(Int(nbf.value.timeIntervalSince1970)) (now \(Int(time)), leeway \(Int(leeway)) s)")
        }
        return claims
    }

    /// Checks the header and the signature only: the `alg` (never `none`, never HMAC, one the
    /// named key can produce), no `crit`, a trusted key, a valid signature. The claims are the
    /// caller's to check.
    public func verifySignature(_ token: UnverifiedToken, now: Date) async throws {
        func reject(_ reason: String) -> PolicyError { PolicyError(.invalidToken, reason) }
        let header = token.header
        guard let alg = header.alg else { throw reject("header has no alg") }
        if alg == "none" || alg.hasPrefix("HS") {
            throw reject("alg \(alg) is never accepted")
        }
        if header.crit != nil { throw reject("header has crit members, which Portcullis does not understand") }

        if searchesKeysWithoutKid, header.x5c == nil, header.kid == nil, header.jwk == nil, !header.jwkUnreadable {
            // An OIDC issuer that names no key (some do not): any of its own keys that fits.
            let candidates = keys.filter { $0.publicKey.algorithms.contains(alg) }
            guard !candidates.isEmpty else { throw reject("alg \(alg) fits none of the issuer's \(keys.count) keys") }
            guard candidates.contains(where: { $0.publicKey.isValidSignature(token.signature, algorithm: alg, signingInput: token.signingInput) }) else {
                throw reject("signature does not verify with any of the issuer's \(candidates.count) \(alg) keys (the token names no kid)")
            }
            return
        }
        let key = try await resolveKey(header, now: now)
        guard key.algorithms.contains(alg) else {
            throw reject("alg \(alg) does not fit the \(key.algorithms.sorted().joined(separator: "/")) key it names")
        }
        guard key.isValidSignature(token.signature, algorithm: alg, signingInput: token.signingInput) else {
            throw reject("signature does not verify")
        }
    }

    /// Finds the key the header names, in the registries' order of precedence.
    private func resolveKey(_ header: JOSEHeader, now: Date) async throws -> PublicKeyMaterial {
        func reject(_ reason: String) -> PolicyError { PolicyError(.invalidToken, reason) }
        if let x5c = header.x5c {
            let chain: [Certificate]
            do {
                chain = try x5c.map { entry in
                    guard let der = Data(base64Encoded: entry) else { throw reject("x5c entry is not base64") }
                    return try Certificate(derEncoded: Array(der))
                }
            } catch let error as PolicyError {
                throw error
            } catch {
                throw reject("x5c entry is not a DER certificate")
            }
            let leaf = chain[0]
            let leafDER = Self.der(leaf)
            if let direct = keys.first(where: { $0.certificateDER == leafDER }) {
                return direct.publicKey
            }
            let roots = trustedRoots + keys.compactMap { $0.certificateDER.flatMap { try? Certificate(derEncoded: $0) } }
            guard !roots.isEmpty else { throw reject("x5c leaf certificate is not a trusted certificate") }
            var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
                RFC5280Policy(validationTime: now)
            }
            let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain.dropFirst()))
            guard case .validCertificate = result else {
                throw reject("x5c chain does not lead to a trusted certificate")
            }
            do {
                return try PublicKeyMaterial(leaf.publicKey)
            } catch let error as PolicyError {
                throw reject("x5c leaf key: \(error.message)")
            }
        }
        if let kid = header.kid {
            guard let match = keys.first(where: { $0.keyIDs.contains(kid) }) else {
                throw reject("kid \"\(kid)\" names no trusted key")
            }
            return match.publicKey
        }
        if header.jwkUnreadable { throw reject("embedded jwk cannot be read") }
        if let jwk = header.jwk {
            guard keys.contains(where: { $0.publicKey == jwk }) else {
                throw reject("embedded jwk is not a trusted key")
            }
            return jwk
        }
        throw reject("header has neither x5c, kid nor jwk; there is no default key")
    }

    static func der(_ certificate: Certificate) -> [UInt8]? {
        var serializer = DER.Serializer()
        guard (try? serializer.serialize(certificate)) != nil else { return nil }
        return serializer.serializedBytes
    }
}
