import Foundation

extension TokenClaims {
    /// The claims as compact JSON, written directly into bytes: minting a token is on the token
    /// endpoint's hot path, where Foundation's `JSONEncoder` was 12% of the samples per token.
    ///
    /// The same members `JSONEncoder` writes (`aud` a string when it holds one value, times as
    /// whole seconds since 1970, optional members left out when absent), in a fixed order.
    package var compactJSON: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + access.count * 96)
        out.append(contentsOf: #"{"iss":"#.utf8)
        Self.appendString(iss.value, to: &out)
        out.append(contentsOf: #","sub":"#.utf8)
        Self.appendString(sub.value, to: &out)
        out.append(contentsOf: #","aud":"#.utf8)
        if aud.value.count == 1 {
            Self.appendString(aud.value[0], to: &out)
        } else {
            Self.appendArray(aud.value, to: &out)
        }
        out.append(contentsOf: #","exp":"#.utf8)
        Self.appendSeconds(exp.value, to: &out)
        if let nbf {
            out.append(contentsOf: #","nbf":"#.utf8)
            Self.appendSeconds(nbf.value, to: &out)
        }
        if let iat {
            out.append(contentsOf: #","iat":"#.utf8)
            Self.appendSeconds(iat.value, to: &out)
        }
        if let jti {
            out.append(contentsOf: #","jti":"#.utf8)
            Self.appendString(jti.value, to: &out)
        }
        out.append(contentsOf: #","access":["#.utf8)
        for (index, entry) in access.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"type":"#.utf8)
            Self.appendString(entry.type, to: &out)
            out.append(contentsOf: #","name":"#.utf8)
            Self.appendString(entry.name, to: &out)
            out.append(contentsOf: #","actions":"#.utf8)
            Self.appendArray(entry.actions, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: "]}".utf8)
        return out
    }

    /// Whole seconds since 1970, as an integer (registry 2.8 reads `exp` into an `int64`).
    private static func appendSeconds(_ date: Date, to out: inout [UInt8]) {
        out.append(contentsOf: String(Int64(date.timeIntervalSince1970.rounded(.down))).utf8)
    }

    private static func appendArray(_ values: [String], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            appendString(value, to: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    private static func appendString(_ string: String, to out: inout [UInt8]) {
        JSONText.appendString(string, to: &out)
    }
}
