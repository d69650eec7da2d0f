import Foundation
import Logging
import Testing

@testable import Gateway

/// Log lines encoded into bytes without Foundation: JSON that parses back to what was logged,
/// logfmt quoted where a value would otherwise be ambiguous.
@Suite("log line encoding")
struct LogLineEncoderTests {
    static let time = Array("2026-12-02T18:58:30.123Z".utf8)

    @Test("a JSON line parses back to every field, with quotes, backslashes, newlines, control characters, slashes and non-ASCII intact, keys sorted")
    func jsonRoundTrip() throws {
        let metadata: Logger.Metadata = [
            "path": "/v2/alice/app/manifests/v1", "outcome": "denied: \"quoted\" \\ back\nnew\tline \u{01} end", "account": "ålice",
            "list": ["a", "b"], "nested": ["z": "1", "a": "2"],
        ]
        let line = LogLineEncoder.line(format: .json, time: Self.time, level: .info, label: "portcullis", message: "request", metadata: metadata)
        #expect(line.last == 0x0A)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.dropLast())) as? [String: Any])
        #expect(object["time"] as? String == "2026-12-02T18:58:30.123Z")
        #expect(object["level"] as? String == "info")
        #expect(object["message"] as? String == "request")
        #expect(object["path"] as? String == "/v2/alice/app/manifests/v1")
        #expect(object["outcome"] as? String == "denied: \"quoted\" \\ back\nnew\tline \u{01} end")
        #expect(object["account"] as? String == "ålice")
        #expect(object["list"] as? [String] == ["a", "b"])
        #expect(object["nested"] as? [String: String] == ["z": "1", "a": "2"])
        let text = String(decoding: line, as: UTF8.self)
        #expect(text.contains(#""path":"/v2/alice/app/manifests/v1""#), "slashes are not escaped")
        let keys = ["account", "level", "list", "logger", "message", "nested", "outcome", "path", "time"]
        let positions = keys.map { text.range(of: "\"\($0)\":")!.lowerBound }
        #expect(positions == positions.sorted(), "keys are sorted")
    }

    @Test("a logfmt line starts with time, level, logger and msg, sorts the rest, and quotes values with spaces, quotes, equals signs, backslashes or newlines")
    func logfmt() {
        let metadata: Logger.Metadata = ["status": "200", "outcome": "a b", "reason": "x=\"y\"\\z\nw", "empty": ""]
        let line = LogLineEncoder.line(format: .logfmt, time: Self.time, level: .warning, label: "portcullis", message: "token rejected", metadata: metadata)
        #expect(
            String(decoding: line, as: UTF8.self)
                == #"time=2026-12-02T18:58:30.123Z level=warning logger=portcullis msg="token rejected" empty="" outcome="a b" reason="x=\"y\"\\z\nw" status=200"# + "\n")
    }

    @Test("RFC 3339 times: whole seconds for issued_at, milliseconds for log lines, in UTC")
    func internetTime() {
        #expect(InternetTime.seconds(1_764_701_910.9) == "2025-12-02T18:58:30Z")
        #expect(String(decoding: InternetTime.bytes(seconds: 0, milliseconds: 7), as: UTF8.self) == "1970-01-01T00:00:00.007Z")
    }
}
