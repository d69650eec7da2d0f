import Foundation

/// The members of a JOSE header that verification looks at.
public struct JOSEHeader: Sendable {
    /// The signature algorithm.
    public var alg: String?
    /// The key id.
    public var kid: String?
    /// The certificate chain, base64 DER, leaf first.
    public var x5c: [String]?
    /// An embedded public key.
    public var jwk: PublicKeyMaterial?
    /// Whether the embedded `jwk` could not be read.
    public var jwkUnreadable = false
    /// Critical extensions.
    public var crit: [String]?

    /// Parses a header, refusing duplicate members (JSON parsers disagree on which one wins).
    public init(json: [UInt8]) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any] else {
            throw PolicyError(.invalidToken, "header is not a JSON object")
        }
        if Self.hasDuplicateTopLevelKeys(json, expected: object.count) {
            throw PolicyError(.invalidToken, "header has duplicate members")
        }
        func string(_ name: String) throws -> String? {
            guard let value = object[name] else { return nil }
            guard let string = value as? String else { throw PolicyError(.invalidToken, "header member \(name) is not a string") }
            return string
        }
        self.alg = try string("alg")
        self.kid = try string("kid")
        if let value = object["x5c"] {
            guard let list = value as? [String], !list.isEmpty else {
                throw PolicyError(.invalidToken, "header member x5c is not a non-empty list of strings")
            }
            self.x5c = list
        }
        if object["crit"] != nil { self.crit = (object["crit"] as? [String]) ?? [] }
        if let member = object["jwk"] {
            if let jwk = member as? [String: Any], let key = try? PublicKeyMaterial(jsonWebKey: jwk) {
                self.jwk = key
            } else {
                self.jwkUnreadable = true
            }
        }
    }

    /// Counts the top-level member names of a JSON object text and compares with the parsed count.
    static func hasDuplicateTopLevelKeys(_ json: [UInt8], expected: Int) -> Bool {
        var depth = 0
        var inString = false
        var escaped = false
        var names = 0
        var expectingName = false
        for byte in json {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                if depth == 1 && expectingName { names += 1; expectingName = false }
                inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth == 1 { expectingName = true }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            case UInt8(ascii: ","):
                if depth == 1 { expectingName = true }
            default:
                break
            }
        }
        return names != expected
    }
}
