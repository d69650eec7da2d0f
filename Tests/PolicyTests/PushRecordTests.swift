import Foundation
import Policy
import Testing

@Suite("push records (retention.push_times)")
struct PushRecordTests {
    @Test("a record is one JSON line with sorted keys that reads back as the same record")
    func lineRoundTrip() throws {
        let record = PushRecord(repository: "team/app", digest: "sha256:" + String(repeating: "a", count: 64), reference: "v1", time: "2026-12-01T10:00:00.250Z")
        #expect(record.jsonLine == #"{"digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","reference":"v1","repository":"team/app","time":"2026-12-01T10:00:00.250Z"}"#)
        #expect(!record.jsonLine.contains("\n"))
        #expect(try JSONDecoder().decode(PushRecord.self, from: Data(record.jsonLine.utf8)) == record)
    }

    @Test("the latest push of a digest counts, per repository; cut or foreign lines are skipped")
    func latestPushTimes() {
        let first = PushRecord(repository: "team/app", digest: "sha256:1", reference: "v1", time: "2026-12-01T10:00:00Z")
        let again = PushRecord(repository: "team/app", digest: "sha256:1", reference: "latest", time: "2026-12-02T10:00:00Z")
        let other = PushRecord(repository: "team/other", digest: "sha256:1", reference: "v1", time: "2026-11-01T00:00:00Z")
        let text = [again.jsonLine, first.jsonLine, "{\"digest\":\"sha256:2\",\"repo", "not json", other.jsonLine, #"{"digest":"sha256:3","reference":"x","repository":"team/app","time":"yesterday"}"#]
            .joined(separator: "\n")
        let times = PushRecord.latestPushTimes(in: text)
        #expect(times["team/app"] == ["sha256:1": RFC3339Timestamp.parse("2026-12-02T10:00:00Z")!])
        #expect(times["team/other"] == ["sha256:1": RFC3339Timestamp.parse("2026-11-01T00:00:00Z")!])
        #expect(times.count == 2)
        #expect(PushRecord.latestPushTimes(in: "").isEmpty)
    }
}
