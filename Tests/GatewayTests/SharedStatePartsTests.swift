import Foundation
import Policy
import Testing

@testable import Gateway

@Suite("Shared state: notifications, the push ledger queue, push_times import, throttle locks")
struct SharedStatePartsTests {
    @Test("every notification survives its payload; payloads of unknown events or with missing fields are ignored")
    func notificationPayloads() {
        let events: [StateEvent] = [
            .robots, .tags(repository: "team/app"), .throttled(kind: .account, key: "al\"ice\tx", until: 1_733_000_000.5),
            .throttled(kind: .address, key: "::1", until: 1),
        ]
        for event in events {
            #expect(StateEvent(payload: event.payload) == event, "\(event.payload)")
        }
        #expect(StateEvent(payload: #"{"event":"future"}"#) == nil)
        #expect(StateEvent(payload: #"{"event":"tags"}"#) == nil)
        #expect(StateEvent(payload: "not json") == nil)
    }

    @Test("the push ledger queue holds entries up to its capacity and refuses the next, keeping what it holds")
    func ledgerQueueIsBounded() {
        let ledger = PushLedger(capacity: 3)
        let record = PushRecord(repository: "r", digest: "sha256:" + String(repeating: "0", count: 64), reference: "t", time: "2026-01-01T00:00:00Z")
        for _ in 0..<3 {
            #expect(ledger.append(PushLedgerEntry(entry: UUID(), record: record, account: "a", time: 0)))
        }
        #expect(!ledger.append(PushLedgerEntry(entry: UUID(), record: record, account: "a", time: 0)))
        #expect(ledger.pending == 3)
    }

    @Test("a push_times file becomes ledger entries whose identifiers depend on the line only, so a second import adds nothing; broken lines are counted")
    func pushTimesImport() {
        let digest = "sha256:" + String(repeating: "c", count: 64)
        let text = """
            {"digest":"\(digest)","reference":"v1","repository":"a/b","time":"2026-02-03T04:05:06.5Z"}
            {"digest":"\(digest)","reference":"v2","repository":"a/b","time":"2026-02-03T04:05:07Z"}
            {"digest":
            """
        let first = StateCommand.ImportCommand.ledgerEntries(text)
        let second = StateCommand.ImportCommand.ledgerEntries(text)
        #expect(first.entries.count == 2 && first.skipped == 1)
        #expect(first.entries.map(\.entry) == second.entries.map(\.entry))
        #expect(Set(first.entries.map(\.entry)).count == 2)
        #expect(first.entries.map(\.time) == [1_770_091_506.5, 1_770_091_507])
    }

    @Test("a lock from another replica refuses the account or address until its time, and never shortens a longer one")
    func throttleLocksFromOtherReplicas() {
        let throttle = AuthenticationThrottle()
        throttle.lock(account: "alice", until: 200)
        #expect(throttle.check(account: "alice", address: "10.0.0.1", now: 100) != .allowed)
        #expect(throttle.check(account: "alice", address: "10.0.0.1", now: 201) == .allowed)
        throttle.lock(address: "10.0.0.2", until: 500)
        throttle.lock(address: "10.0.0.2", until: 300)
        #expect(throttle.check(account: "bob", address: "10.0.0.2", now: 400) != .allowed)
        #expect(throttle.check(account: "bob", address: "10.0.0.3", now: 400) == .allowed)
    }
}
