import Policy
import Testing

@Suite("Upstream routing: one repository, one registry")
struct UpstreamRoutingTests {
    let routing = UpstreamRouting(
        primary: "v2",
        claims: [
            UpstreamRouting.Claim(name: "v2"),
            UpstreamRouting.Claim(name: "v3", repositories: [try! Pattern("team-a/**")], weight: 10),
        ])

    @Test("a repository pattern claims its repositories; an unavailable upstream's repositories go to the primary")
    func patternsFirst() {
        #expect(routing.upstream(for: "team-a/app") == "v3")
        #expect(routing.upstream(for: "team-a/app") { $0 != "v3" } == "v2")
        let outside = (0..<100).map { "team-b/app\($0)" }.first { UpstreamRouting.bucket($0) >= 10 }!
        #expect(routing.upstream(for: outside) == "v2", "a repository outside the pattern and the 10% share stays on the primary")
    }

    @Test("a 10% weight takes close to 10% of repositories, always the same ones, and 0% or the primary's share takes none")
    func weightsByStableHash() {
        let names = (0..<2000).map { "team-\($0 % 37)/app-\($0)" }
        let canary = names.filter { routing.upstream(for: $0) == "v3" && !$0.hasPrefix("team-a/") }
        #expect((120...280).contains(canary.count), "\(canary.count) of 2000 went to a 10% canary")
        #expect(names.allSatisfy { routing.upstream(for: $0) == routing.upstream(for: $0) })
        #expect(UpstreamRouting.bucket("team-b/app") == UpstreamRouting.bucket("team-b/app"))
        let none = UpstreamRouting(primary: "v2", claims: [UpstreamRouting.Claim(name: "v3", weight: 0)])
        #expect(names.allSatisfy { none.upstream(for: $0) == "v2" })
        let all = UpstreamRouting(primary: "v2", claims: [UpstreamRouting.Claim(name: "v3", weight: 100)])
        #expect(names.allSatisfy { all.upstream(for: $0) == "v3" })
    }

    @Test("raising a share only moves repositories from the primary to the canary, never back")
    func growingShareKeepsCanaryRepositories() {
        let names = (0..<500).map { "r/\($0)" }
        let ten = UpstreamRouting(primary: "v2", claims: [UpstreamRouting.Claim(name: "v3", weight: 10)])
        let fifty = UpstreamRouting(primary: "v2", claims: [UpstreamRouting.Claim(name: "v3", weight: 50)])
        #expect(names.filter { ten.upstream(for: $0) == "v3" }.allSatisfy { fifty.upstream(for: $0) == "v3" })
    }
}
