import Foundation

/// Signs registry tokens with one key, announcing it the way one registry version expects.
///
/// The JOSE header is computed once: `alg`, `typ` and exactly one key member (`x5c` or `kid`)
/// chosen by the ``KeyHint``.
public struct TokenMinter: Sendable {
    /// The signing key.
    public let key: SigningKey
    /// How the key is announced.
    public let hint: KeyHint
    /// The encoded header, ready to be joined with a payload.
    private let encodedHeader: String

    /// The header fields this minter writes.
    public let header: [String: HeaderValue]

    /// A JOSE header value: a string or a list of strings.
    public enum HeaderValue: Sendable, Equatable, Encodable {
        case string(String)
        case strings([String])

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let value): try container.encode(value)
            case .strings(let values): try container.encode(values)
            }
        }
    }

    /// Prepares a minter.
    /// - Throws: ``PolicyError/Code/unsupportedKeyForRegistry`` when the hint cannot be honoured
    ///   with this key: `x5c` without a certificate, or `kid` for an EC key on registry 3.0.
    public init(key: SigningKey, hint: KeyHint) throws {
        self.key = key
        self.hint = hint
        var header: [String: HeaderValue] = ["alg": .string(key.algorithm), "typ": .string("JWT")]
        switch hint {
        case .x5c:
            guard !key.certificateChain.isEmpty else {
                throw PolicyError(.unsupportedKeyForRegistry, "key hint x5c needs a certificate for the signing key")
            }
            header["x5c"] = .strings(key.x5c)
        case .kid(let version):
            header["kid"] = .string(try key.identifiers.kid(for: version))
        case .jwks(let kid):
            guard !kid.isEmpty else {
                throw PolicyError(.unsupportedKeyForRegistry, "key hint jwks needs a non-empty kid")
            }
            header["kid"] = .string(kid)
        }
        self.header = header
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            self.encodedHeader = Base64URL.encode(try encoder.encode(header))
        } catch {
            throw PolicyError(.tokenMintingFailed, "cannot encode the JOSE header", underlying: error)
        }
    }

    /// The key id the header announces, or for `x5c` the leaf key's RFC 7638 thumbprint, for logs.
    public var announcedKeyID: String {
        if case .string(let kid)? = header["kid"] { return kid }
        return "x5c leaf (rfc7638 \(key.identifiers.rfc7638), libtrust \(key.identifiers.libtrust))"
    }

    /// Signs `claims` into a compact JWS.
    /// - Throws: ``PolicyError/Code/tokenMintingFailed``.
    public func mint(_ claims: TokenClaims) throws -> String {
        do {
            let signingInput = encodedHeader + "." + Base64URL.encode(claims.compactJSON)
            let signature = try key.sign(Array(signingInput.utf8))
            return signingInput + "." + Base64URL.encode(signature)
        } catch {
            throw PolicyError(.tokenMintingFailed, "cannot sign a token with the \(key.algorithm) key", underlying: error)
        }
    }
}
