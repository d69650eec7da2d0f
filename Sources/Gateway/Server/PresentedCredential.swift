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
            guard let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
                let decoded = String(data: data, encoding: .utf8), let colon = decoded.firstIndex(of: ":")
            else {
                self = .malformed("Basic credentials are not base64 of user:password")
                return
            }
            self = .basic(account: String(decoded[..<colon]), secret: String(decoded[decoded.index(after: colon)...]))
        case "bearer":
            self = .bearer(String(parts[1]).trimmingCharacters(in: .whitespaces))
        default:
            self = .malformed("unsupported authorization scheme \(parts[0])")
        }
    }
}
