import Foundation

extension PublicKeyMaterial {
    /// The key as a JWK object (RFC 7517) with the given `kid`, for a registry's `jwks:` file.
    public func jsonWebKey(kid: String) -> [String: String] {
        var members: [String: String] = ["kid": kid, "use": "sig"]
        if let curve, let (x, y) = coordinates {
            members["kty"] = "EC"
            members["crv"] = curve
            members["x"] = Base64URL.encode(x)
            members["y"] = Base64URL.encode(y)
            members["alg"] = curve == "P-256" ? "ES256" : "ES384"
        } else if let (n, e) = rsaPrimitives {
            members["kty"] = "RSA"
            members["n"] = Base64URL.encode(n)
            members["e"] = Base64URL.encode(e)
            members["alg"] = "RS256"
        }
        return members
    }

    /// A JWKS document holding this key under `kid`, as pretty-printed JSON.
    public func jsonWebKeySet(kid: String) -> String {
        let document = ["keys": [jsonWebKey(kid: kid)]]
        let data = (try? JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
