import Testing

@testable import Gateway

@Suite("Upstream health: when a canary leaves the rotation and comes back")
struct UpstreamHealthTests {
    @Test("the fallback_after-th failed answer in a row takes an upstream out; a success in between resets the count")
    func consecutiveFailures() {
        let health = UpstreamHealth()
        #expect(!health.recordAnswer(failed: true, for: "v3", threshold: 3))
        #expect(!health.recordAnswer(failed: true, for: "v3", threshold: 3))
        #expect(!health.recordAnswer(failed: false, for: "v3", threshold: 3))
        #expect(!health.recordAnswer(failed: true, for: "v3", threshold: 3))
        #expect(!health.recordAnswer(failed: true, for: "v3", threshold: 3))
        #expect(health.isAvailable("v3"))
        #expect(health.recordAnswer(failed: true, for: "v3", threshold: 3), "the third failure in a row")
        #expect(!health.isAvailable("v3"))
        #expect(!health.recordAnswer(failed: true, for: "v3", threshold: 3), "already out: reported once")
        #expect(health.isAvailable("v2"), "other upstreams are not affected")
    }

    @Test("a passing readiness check brings an upstream back and resets its count; a failing one takes it out")
    func readinessVerdicts() {
        let health = UpstreamHealth()
        #expect(health.record(ready: false, for: "v3"))
        #expect(!health.record(ready: false, for: "v3"), "no change the second time")
        #expect(health.unavailable == ["v3"])
        #expect(health.record(ready: true, for: "v3"))
        #expect(health.isAvailable("v3"))
        #expect(!health.recordAnswer(failed: true, for: "v3", threshold: 2))
    }
}
