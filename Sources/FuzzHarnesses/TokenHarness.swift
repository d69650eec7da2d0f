import Dispatch
import Foundation
import Policy

/// Fuzzes JWT decoding and verification.
///
/// The first byte picks the mode: `0` takes the rest as a compact token; `1` takes a header
/// and a payload JSON (split at the first NUL) and signs them with the trusted key, so the
/// verifier gets past the signature to the header, key and claims checks; anything else takes
/// header, payload and signature (split at NULs) unsigned. Whatever the input, a token the
/// verifier accepts was signed by the trusted key with its algorithm, and carries the expected
/// issuer, an expected audience, and a live expiry.
enum TokenHarness {
    static let issuer = "portcullis-fuzz"
    static let audience = "registry"
    /// A fixed moment, so that inputs replay identically.
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static let signingKey: SigningKey = {
        do {
            let output = try KeyGenerator.generate(.es256, now: now)
            return try SigningKey(privateKeyPEM: output.privateKeyPEM, certificateChainPEM: output.certificatePEM)
        } catch {
            fatalError("cannot create the fuzzing key: \(error)")
        }
    }()

    static let verifier = TokenVerifier(issuer: issuer, audience: audience, keys: [TrustedKey(signingKey)])

    static func run(_ input: [UInt8]) throws(FuzzFinding) {
        guard let mode = input.first else { return }
        let rest = Array(input.dropFirst())
        let token: String
        let signedByUs: Bool
        switch mode {
        case 0:
            token = String(decoding: rest, as: UTF8.self)
            signedByUs = false
        case 1:
            let parts = rest.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
            let header = Base64URL.encode(Array(parts[0]))
            let payload = Base64URL.encode(parts.count > 1 ? Array(parts[1]) : [])
            let signingInput = header + "." + payload
            guard let signature = try? signingKey.sign(Array(signingInput.utf8)) else {
                throw FuzzFinding("token", "the trusted key cannot sign \(signingInput)")
            }
            token = signingInput + "." + Base64URL.encode(signature)
            signedByUs = true
        default:
            let parts = rest.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
            token = parts.map { Base64URL.encode(Array($0)) }.joined(separator: ".")
            signedByUs = false
        }

        // Decoding alone must be total: an error or a value, for any string.
        if let unverified = try? UnverifiedToken(token) {
            _ = unverified.issuer
            _ = try? unverified.claims()
        }

        guard let claims = verify(token) else { return }
        guard signedByUs else {
            throw FuzzFinding("token", "a token the trusted key never signed was accepted: \(token)")
        }
        guard (try? UnverifiedToken(token))?.header.alg == "ES256" else {
            throw FuzzFinding("token", "a token was accepted with an alg other than the key's ES256: \(token)")
        }
        guard claims.iss.value == issuer, claims.aud.value.contains(audience) else {
            throw FuzzFinding("token", "a token for iss \(claims.iss.value) aud \(claims.aud.value) was accepted: \(token)")
        }
        guard claims.exp.value.timeIntervalSince1970 + verifier.leeway > now.timeIntervalSince1970 else {
            throw FuzzFinding("token", "an expired token was accepted: \(token)")
        }
    }

    /// Runs the asynchronous verifier to completion from libFuzzer's synchronous callback.
    private static func verify(_ token: String) -> TokenClaims? {
        let result = ResultBox()
        let done = DispatchSemaphore(value: 0)
        Task {
            result.claims = try? await verifier.verify(token, now: now)
            done.signal()
        }
        done.wait()
        return result.claims
    }

    /// Hands the verifier's answer from its task to the waiting fuzzer thread; the semaphore
    /// orders the write before the read.
    private final class ResultBox: @unchecked Sendable {
        var claims: TokenClaims?
    }
}
