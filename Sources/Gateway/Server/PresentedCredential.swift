import Foundation
import NIOHTTP1

/// What a client put in its `Authorization` header.
enum PresentedCredential: Sendable {
    /// No `Authorization` header.
    case none
    /// `Basic` with a user and password.
    case basic(account: String, secret: String)
    /// `Bearer` with a token.
    case bearer(String)
    /// Something unusable; the string says what.
    case malformed(String)

    /// `text` without leading or trailing spaces and tabs.
    static func trimmed(_ text: Substring) -> String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = text.firstIndex(where: { !isBlank($0) }), let last = text.lastIndex(where: { !isBlank($0) }) else { return "" }
        return String(text[first...last])
    }

    /// Reads the `Authorization` header of `headers`.
    init(_ headers: HTTPHeaders) {
        let values = headers["authorization"]
        guard let value = values.first else {
            self = .none
            return
        }
        guard values.count == 1 else {
            self = .malformed("more than one Authorization header")
            return
        }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else {
            self = .malformed("Authorization header without credentials")
            return
        }
        switch parts[0].lowercased() {
        case "basic":
            guard let data = Data(base64Encoded: Self.trimmed(parts[1])),
                let decoded = String(data: data, encoding: .utf8), let colon = decoded.firstIndex(of: ":")
            else {
                self = .malformed("Basic credentials are not base64 of user:password")
                return
            }
            self = .basic(account: String(decoded[..<colon]), secret: String(decoded[decoded.index(after: colon)...]))
        case "bearer":
            self = .bearer(Self.trimmed(parts[1]))
        default:
            self = .malformed("unsupported authorization scheme \(parts[0])")
        }
    }
}
