import Foundation
import JWTKit
import Testing

@testable import Policy

/// The claims JSON written by hand for minting decodes to the same claims `JSONEncoder` would
/// have written, and keeps the forms registry 2.8 needs.
@Suite("token claims JSON")
struct TokenClaimsJSONTests {
    static func decoded(_ bytes: [UInt8]) throws -> TokenClaims {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return try decoder.decode(TokenClaims.self, from: Data(bytes))
    }

    @Test("claims with several scopes, escapes and non-ASCII names decode back equal; aud is a string and times are integers")
    func roundTrip() throws {
        let claims = TokenClaims(
            issuer: "portcullis \"issuer\"", subject: "ålice\\ci\n", audience: "registry.example.com",
            scopes: [try Scope(parsing: "repository:alice/app:pull,push"), try Scope(parsing: "registry:catalog:*")],
            now: Date(timeIntervalSince1970: 1_764_701_910.75), lifetime: 300, id: "0F4C-jti")
        let json = claims.compactJSON
        #expect(try Self.decoded(json) == claims)
        let text = String(decoding: json, as: UTF8.self)
        #expect(text.contains(#""aud":"registry.example.com""#))
        #expect(text.contains(#""exp":1764702210,"nbf":1764701910,"iat":1764701910"#))
        #expect(try JSONSerialization.jsonObject(with: Data(json)) is [String: Any])
    }

    @Test("an audience of several values is an array, and absent optional claims are left out")
    func severalAudiencesAndAbsentClaims() throws {
        var claims = TokenClaims(
            issuer: "i", subject: "s", audience: "a", scopes: [], now: Date(timeIntervalSince1970: 1_000), lifetime: 60, id: "j")
        claims.aud = AudienceClaim(value: ["a", "b"])
        claims.nbf = nil
        claims.jti = nil
        let text = String(decoding: claims.compactJSON, as: UTF8.self)
        #expect(text == #"{"iss":"i","sub":"s","aud":["a","b"],"exp":1060,"iat":1000,"access":[]}"#)
        #expect(try Self.decoded(claims.compactJSON) == claims)
    }
}
