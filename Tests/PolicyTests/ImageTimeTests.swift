import Foundation
import Policy
import Testing

@Suite("Image times: creation time, else the recorded push, printed as RFC 3339")
struct ImageTimeTests {
    @Test("a reproducible build's 1970-01-01 or 0001-01-01 creation time, or none, gives way to the recorded push time", arguments: [
        "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", nil,
    ])
    func placeholderCreationTimesUseThePushTime(_ created: String?) throws {
        let seconds = created.map { try! #require(RFC3339Timestamp.parse($0)) }
        let time = try #require(ImageTime(created: seconds, pushed: 1_800_000_000))
        #expect(time.source == .pushed && time.seconds == 1_800_000_000)
        #expect(time.description == "pushed 2027-01-15T08:00:00Z")
        #expect(ImageTime(created: seconds, pushed: nil) == nil)
        #expect(ImageTime.describe(nil) == "time unknown")
    }

    @Test("a real creation time wins over the push time")
    func creationTimeWins() throws {
        let time = try #require(ImageTime(created: RFC3339Timestamp.parse("2024-05-01T12:00:00.5Z"), pushed: 1_800_000_000))
        #expect(time.source == .created)
        #expect(time.description == "created 2024-05-01T12:00:00Z")
    }

    @Test("format is proleptic Gregorian RFC 3339 and parse(format(t)) == t, year 1 and leap days included", arguments: [
        "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "1582-10-04T12:00:00Z", "1600-02-29T01:02:03Z",
        "2000-02-29T23:59:59Z", "2026-12-04T02:10:00Z", "9999-12-31T23:59:59Z",
    ])
    func formatRoundTrips(_ text: String) throws {
        let seconds = try #require(RFC3339Timestamp.parse(text))
        #expect(RFC3339Timestamp.format(seconds) == text)
    }

    @Test("format agrees with Foundation's ISO 8601 formatter from 1583 on")
    func formatAgreesWithFoundation() {
        let formatter = ISO8601DateFormatter()
        for seconds in stride(from: -12_000_000_000.0, through: 4_000_000_000, by: 7_777_777.25) {
            #expect(RFC3339Timestamp.format(seconds) == formatter.string(from: Date(timeIntervalSince1970: seconds.rounded(.down))), "\(seconds)")
        }
    }
}
