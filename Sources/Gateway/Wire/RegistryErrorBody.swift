import Foundation

/// An error as the registry writes it: `{"errors":[{"code","message","detail"}]}`.
struct RegistryErrorBody: Encodable, Sendable {
    /// One error entry.
    struct Entry: Encodable, Sendable {
        var code: String
        var message: String
        var detail: Detail?
    }

    /// The `detail` member: the access a challenge asks for, or a plain string.
    enum Detail: Encodable, Sendable {
        case access([AccessDetail])
        case text(String)

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .access(let list): try container.encode(list)
            case .text(let text): try container.encode(text)
            }
        }
    }

    /// One resource and action the request needed, in the registry's own field names.
    struct AccessDetail: Encodable, Sendable {
        var type: String
        var name: String
        var action: String

        enum CodingKeys: String, CodingKey {
            case type = "Type"
            case name = "Name"
            case action = "Action"
        }
    }

    var errors: [Entry]

    /// A body with a single error.
    init(_ error: RegistryError, message: String, detail: Detail? = nil) {
        self.errors = [Entry(code: error.code, message: message, detail: detail)]
    }

    /// The JSON bytes.
    var json: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? Array(encoder.encode(self))) ?? Array(#"{"errors":[{"code":"UNKNOWN","message":"unknown error"}]}"#.utf8)
    }
}
