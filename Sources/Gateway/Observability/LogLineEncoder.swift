import Logging
import Policy

/// Encodes a log event as one line of bytes, in JSON or logfmt, without Foundation: the request
/// log line is written for every request, so it costs one buffer and no formatter.
///
/// JSON lines have their keys sorted (the event's `time`, `level`, `logger` and `message` among
/// the metadata keys), strings escaped as RFC 8259 requires and `/` left as it is. logfmt lines
/// start with `time`, `level`, `logger` and `msg`, then the metadata keys sorted; a value with a
/// space, `"`, `=`, `\` or a newline is quoted.
enum LogLineEncoder {
    /// The line for an event, with its trailing newline.
    static func line(
        format: StructuredLogHandler.Format, time: [UInt8], level: Logger.Level, label: String, message: String, metadata: Logger.Metadata
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + metadata.count * 32)
        switch format {
        case .json:
            var fields: [(String, Logger.MetadataValue)] = Array(metadata)
            fields.append(("time", .string(String(decoding: time, as: UTF8.self))))
            fields.append(("level", .string(level.rawValue)))
            fields.append(("logger", .string(label)))
            fields.append(("message", .string(message)))
            fields.sort { $0.0 < $1.0 }
            out.append(UInt8(ascii: "{"))
            var first = true
            for (key, value) in fields {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                appendJSONString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                appendJSON(value, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .logfmt:
            out.append(contentsOf: "time=".utf8)
            out.append(contentsOf: time)
            out.append(contentsOf: " level=".utf8)
            out.append(contentsOf: level.rawValue.utf8)
            out.append(contentsOf: " logger=".utf8)
            appendLogfmt(label, to: &out)
            out.append(contentsOf: " msg=".utf8)
            appendLogfmt(message, to: &out)
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
                out.append(UInt8(ascii: " "))
                out.append(contentsOf: key.utf8)
                out.append(UInt8(ascii: "="))
                appendLogfmt(value.description, to: &out)
            }
        }
        out.append(0x0A)
        return out
    }

    private static func appendJSON(_ value: Logger.MetadataValue, to out: inout [UInt8]) {
        switch value {
        case .string(let string):
            appendJSONString(string, to: &out)
        case .stringConvertible(let convertible):
            appendJSONString(convertible.description, to: &out)
        case .array(let array):
            out.append(UInt8(ascii: "["))
            for (index, element) in array.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendJSON(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .dictionary(let dictionary):
            out.append(UInt8(ascii: "{"))
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendJSONString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                appendJSON(dictionary[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string (see ``JSONText/appendString(_:to:)``).
    static func appendJSONString(_ string: String, to out: inout [UInt8]) {
        JSONText.appendString(string, to: &out)
    }

    static func appendLogfmt(_ text: String, to out: inout [UInt8]) {
        let needsQuotes = text.isEmpty || text.utf8.contains { $0 == 0x20 || $0 == 0x22 || $0 == 0x3D || $0 == 0x0A || $0 == 0x5C }
        guard needsQuotes else {
            out.append(contentsOf: text.utf8)
            return
        }
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
