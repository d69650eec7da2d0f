import Foundation

/// A compact JWS split and decoded, with nothing about it trusted yet.
///
/// Used to pick the verifier for a token's issuer and by `portcullis token inspect`.
public struct UnverifiedToken: Sendable {
    /// The decoded header members that matter.
    public let header: JOSEHeader
    /// The header JSON as sent.
    public let headerJSON: [UInt8]
    /// The payload JSON as sent.
    public let payloadJSON: [UInt8]
    /// The signature bytes.
    public let signature: [UInt8]
    /// The bytes the signature covers (`header.payload`).
    public let signingInput: [UInt8]

    /// Splits and decodes `token`.
    /// - Throws: ``PolicyError/Code/invalidToken`` when it is oversized or not a compact JWS.
    public init(_ token: String, maximumSize: Int = 16 * 1024) throws {
        func reject(_ reason: String) -> PolicyError { PolicyError(.invalidToken, reason) }
        guard token.utf8.count <= maximumSize else {
            throw reject("token is \(token.utf8.count) bytes long; the limit is \(maximumSize)")
        }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw reject("token is not a compact JWS (expected three dot-separated parts)") }
        guard let headerBytes = Base64URL.decode(parts[0]), let payloadBytes = Base64URL.decode(parts[1]),
            let signature = Base64URL.decode(parts[2])
        else { throw reject("token part is not base64url") }
        self.header = try JOSEHeader(json: headerBytes)
        self.headerJSON = headerBytes
        self.payloadJSON = payloadBytes
        self.signature = signature
        self.signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
    }

    /// The `iss` claim, read without verification.
    public var issuer: String? {
        (try? JSONSerialization.jsonObject(with: Data(payloadJSON)) as? [String: Any])?["iss"] as? String
    }

    /// The claims, decoded without verification.
    /// - Throws: ``PolicyError/Code/invalidToken`` when they do not decode.
    public func claims() throws -> TokenClaims {
        if let object = try? JSONSerialization.jsonObject(with: Data(payloadJSON)) as? [String: Any],
            JOSEHeader.hasDuplicateTopLevelKeys(payloadJSON, expected: object.count)
        {
            throw PolicyError(.invalidToken, "claims have duplicate members")
        }
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .secondsSince1970
            return try decoder.decode(TokenClaims.self, from: Data(payloadJSON))
        } catch {
            throw PolicyError(.invalidToken, "claims are malformed: \(error)")
        }
    }
}
