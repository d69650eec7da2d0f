import Crypto
import Policy
import Synchronization

/// Client tokens already verified, so that a client repeating its token is not charged a
/// signature verification on every request.
///
/// Keyed by a SHA-256 of the token; an entry is used only until the token's own `exp` (plus
/// the verifier's leeway). A new ``GatewayState`` (reload, key rotation) starts empty, so a
/// change of trust applies at once.
final class VerifiedTokenCache: Sendable {
    private struct Entry: Sendable {
        var claims: TokenClaims
        var issuer: TrustedIssuers.Issuer
        var validUntil: Double
    }

    private let entries = Mutex<[SHA256Digest: Entry]>([:])
    /// The most entries kept.
    let capacity: Int

    init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    /// The claims of `token` if it was verified before and has not expired at `now`.
    func lookup(_ token: String, now: Double) -> (TokenClaims, TrustedIssuers.Issuer)? {
        let key = SHA256.hash(data: Array(token.utf8))
        return entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            guard entry.validUntil > now else {
                entries[key] = nil
                return nil
            }
            return (entry.claims, entry.issuer)
        }
    }

    /// Remembers a verified token until its expiry (and the verifier's leeway).
    func insert(_ token: String, claims: TokenClaims, issuer: TrustedIssuers.Issuer, now: Double) {
        let validUntil = claims.exp.value.timeIntervalSince1970 + issuer.verifier.leeway
        guard validUntil > now else { return }
        let key = SHA256.hash(data: Array(token.utf8))
        entries.withLock { entries in
            if entries.count >= capacity { entries = entries.filter { $0.value.validUntil > now } }
            if entries.count >= capacity { entries.removeAll() }
            entries[key] = Entry(claims: claims, issuer: issuer, validUntil: validUntil)
        }
    }
}
