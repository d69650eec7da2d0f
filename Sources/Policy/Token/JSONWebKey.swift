import Crypto
import _CryptoExtras
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

extension PublicKeyMaterial {
    /// Reads a JWK object (EC P-256/P-384 or RSA).
    /// - Throws: ``PolicyError/Code/invalidKey`` naming the member that is missing or wrong.
    public init(jsonWebKey members: [String: Any]) throws {
        func bytes(_ name: String) throws -> [UInt8] {
            guard let text = members[name] as? String, let bytes = Base64URL.decode(text), !bytes.isEmpty else {
                throw PolicyError(.invalidKey, "JWK member \(name) is missing or not base64url")
            }
            return bytes
        }
        switch members["kty"] as? String {
        case "EC":
            let x = try bytes("x")
            let y = try bytes("y")
            do {
                switch members["crv"] as? String {
                case "P-256":
                    self = .p256(try P256.Signing.PublicKey(rawRepresentation: Self.pad(x, 32) + Self.pad(y, 32)))
                case "P-384":
                    self = .p384(try P384.Signing.PublicKey(rawRepresentation: Self.pad(x, 48) + Self.pad(y, 48)))
                default:
                    throw PolicyError(.invalidKey, "JWK curve \(members["crv"] ?? "none") is not supported (P-256, P-384)")
                }
            } catch let error as PolicyError {
                throw error
            } catch {
                throw PolicyError(.invalidKey, "JWK is not a point on its curve", underlying: error)
            }
        case "RSA":
            do {
                self = .rsa(try _RSA.Signing.PublicKey(n: try bytes("n"), e: try bytes("e")))
            } catch let error as PolicyError {
                throw error
            } catch {
                throw PolicyError(.invalidKey, "JWK is not a usable RSA key", underlying: error)
            }
        default:
            throw PolicyError(.invalidKey, "JWK kty \(members["kty"] ?? "none") is not supported (EC, RSA)")
        }
    }

    /// Reads every key of a JWKS document, with its `kid`.
    /// - Throws: ``PolicyError/Code/invalidKey`` for a document that is not a JWKS or a key that cannot be read.
    public static func parseJSONWebKeySet(_ json: [UInt8]) throws -> [(kid: String?, key: PublicKeyMaterial)] {
        guard let document = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
            let keys = document["keys"] as? [[String: Any]]
        else {
            throw PolicyError(.invalidKey, "not a JWKS document (expected {\"keys\": [...]})")
        }
        return try keys.enumerated().map { index, members in
            do {
                return (members["kid"] as? String, try PublicKeyMaterial(jsonWebKey: members))
            } catch let error as PolicyError {
                throw PolicyError(.invalidKey, "key \(index): \(error.message)", underlying: error)
            }
        }
    }

    private static func pad(_ bytes: [UInt8], _ size: Int) -> [UInt8] {
        bytes.count >= size ? bytes : [UInt8](repeating: 0, count: size - bytes.count) + bytes
    }
}
