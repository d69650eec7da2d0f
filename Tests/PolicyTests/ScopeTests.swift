import Policy
import Testing

@Suite("Scope parsing and printing")
struct ScopeTests {
    struct ValidCase: Sendable, CustomTestStringConvertible {
        var text: String
        var type: String
        var name: String
        var actions: ActionSet
        var printed: String
        var testDescription: String { text }
    }

    static let validCases: [ValidCase] = [
        ValidCase(text: "repository:team/app:pull", type: "repository", name: "team/app", actions: .pull, printed: "repository:team/app:pull"),
        ValidCase(
            text: "repository:team/app:push,pull", type: "repository", name: "team/app", actions: [.pull, .push],
            printed: "repository:team/app:pull,push"),
        ValidCase(
            text: "repository:localhost:5000/team/app:pull,push", type: "repository", name: "localhost:5000/team/app",
            actions: [.pull, .push], printed: "repository:localhost:5000/team/app:pull,push"),
        ValidCase(
            text: "repository:registry.example.com/app:delete", type: "repository", name: "registry.example.com/app",
            actions: .delete, printed: "repository:registry.example.com/app:delete"),
        ValidCase(text: "registry:catalog:*", type: "registry", name: "catalog", actions: .all, printed: "registry:catalog:*"),
        ValidCase(text: "repository(plugin):a/b:pull", type: "repository", name: "a/b", actions: .pull, printed: "repository:a/b:pull"),
        ValidCase(text: "repository:a:pull,*", type: "repository", name: "a", actions: .all, printed: "repository:a:*"),
        ValidCase(
            text: "repository:a:delete,push,pull,pull", type: "repository", name: "a", actions: [.pull, .push, .delete],
            printed: "repository:a:pull,push,delete"),
    ]

    @Test("a valid scope parses into type, name and actions and prints canonically", arguments: validCases)
    func parsesValidScope(_ valid: ValidCase) throws {
        let scope = try Scope(parsing: valid.text)
        #expect(scope.resource.type == valid.type)
        #expect(scope.resource.name == valid.name)
        #expect(scope.actions == valid.actions)
        #expect(scope.description == valid.printed)
        // The printed form parses back to the same scope.
        #expect(try Scope(parsing: scope.description) == scope)
    }

    struct InvalidCase: Sendable, CustomTestStringConvertible {
        var text: String
        /// Strings the error message must contain: the scope itself and the offending part.
        var mentions: [String]
        var testDescription: String { text }
    }

    static let invalidCases: [InvalidCase] = [
        InvalidCase(text: "repository", mentions: ["\"repository\""]),
        InvalidCase(text: "repository:team/app", mentions: ["\"repository:team/app\""]),
        InvalidCase(text: ":team/app:pull", mentions: ["\":team/app:pull\""]),
        InvalidCase(text: "repository::pull", mentions: ["\"repository::pull\"", "empty resource name"]),
        InvalidCase(text: "repository:team/app:", mentions: ["\"repository:team/app:\""]),
        InvalidCase(text: "repository:team/app:pull,fly", mentions: ["\"repository:team/app:pull,fly\"", "\"fly\""]),
        InvalidCase(text: "repository:team/app:PULL", mentions: ["\"PULL\""]),
        InvalidCase(text: "repository:team/app:pull,,push", mentions: ["\"pull,,push\""]),
        InvalidCase(text: "repository:App:pull", mentions: ["\"repository:App:pull\"", "\"App\"", "upper-case"]),
        InvalidCase(text: "repository:team/App:pull", mentions: ["\"App\"", "upper-case"]),
        InvalidCase(text: "repository:team//app:pull", mentions: ["\"repository:team//app:pull\"", "empty component"]),
        InvalidCase(text: "repository:team/app-:pull", mentions: ["\"app-\""]),
        InvalidCase(text: "repo sitory:a:pull", mentions: ["\"repo sitory\""]),
        InvalidCase(text: "(x):a:pull", mentions: ["\"(x)\""]),
        InvalidCase(text: "repository(x:a:pull", mentions: ["\"repository(x\""]),
        InvalidCase(text: "registry:cat alog:*", mentions: ["\"cat alog\""]),
    ]

    @Test("an invalid scope is refused with invalidScope quoting the offending part", arguments: invalidCases)
    func refusesInvalidScope(_ invalid: InvalidCase) {
        expectPolicyError(.invalidScope, messageContains: invalid.mentions) {
            try Scope(parsing: invalid.text)
        }
    }

    @Test("the name of a repository scope is validated with its registry host and port")
    func repositoryScopeKeepsHostAndPortInName() throws {
        let scope = try Scope(parsing: "repository:localhost:5000/team/app:pull,push")
        #expect(scope.resource == Resource(type: "repository", name: "localhost:5000/team/app"))
        expectPolicyError(.invalidScope, messageContains: ["port"]) {
            try Scope(parsing: "repository:localhost:50x0/team/app:pull")
        }
    }

    @Test("parseAll splits space-separated scopes and merges repeated resources in first-seen order")
    func parseAllMergesSameResource() throws {
        let scopes = try Scope.parseAll([
            "repository:a/b:pull  repository:c/d:push",
            "repository:a/b:push",
            "registry:catalog:*",
            " repository:c/d:pull ",
        ])
        #expect(scopes.map(\.description) == ["repository:a/b:pull,push", "repository:c/d:pull,push", "registry:catalog:*"])
    }

    @Test("parseAll of nothing is empty; an empty parameter adds nothing")
    func parseAllOfNothing() throws {
        #expect(try Scope.parseAll([]).isEmpty)
        #expect(try Scope.parseAll(["", "   "]).isEmpty)
    }

    @Test("parseAll merges the same repository named with and without a resource class")
    func parseAllMergesClassVariant() throws {
        let scopes = try Scope.parseAll(["repository(plugin):a/b:pull repository:a/b:delete"])
        #expect(scopes.map(\.description) == ["repository:a/b:pull,delete"])
    }

    @Test("parseAll fails on the first bad scope even among good ones")
    func parseAllRefusesBadScope() {
        expectPolicyError(.invalidScope, messageContains: ["\"repository:Bad:pull\""]) {
            try Scope.parseAll(["repository:a/b:pull", "repository:c/d:pull repository:Bad:pull"])
        }
    }
}

@Suite("ActionSet semantics")
struct ActionSetTests {
    @Test("`*` parses to .all, which contains every named action and the wildcard")
    func starIsAll() throws {
        let star = try ActionSet(action: "*")
        #expect(star == .all)
        #expect(star.contains([.pull, .push, .delete, .wildcard]))
        #expect(star.words == ["*"])
        #expect(star.description == "*")
    }

    @Test(
        "action words print in canonical order",
        arguments: [
            (ActionSet.pull, ["pull"]),
            ([.delete, .pull], ["pull", "delete"]),
            ([.push, .delete, .pull], ["pull", "push", "delete"]),
            (.all, ["*"]),
            ([], []),
        ] as [(ActionSet, [String])])
    func wordsAreCanonical(_ set: ActionSet, _ words: [String]) {
        #expect(set.words == words)
        #expect(set.description == words.joined(separator: ","))
    }

    @Test("`*` intersected with pull,push,delete is exactly those three, printed by name")
    func starIntersection() {
        let named: ActionSet = [.pull, .push, .delete]
        let intersection = ActionSet.all.intersection(named)
        #expect(intersection == named)
        #expect(!intersection.contains(.wildcard))
        #expect(intersection.words == ["pull", "push", "delete"])
        #expect(!named.satisfies(.all), "pull,push,delete must not satisfy a request for *")
        #expect(ActionSet.all.satisfies(named))
    }

    @Test("satisfies means superset")
    func satisfiesIsSuperset() {
        #expect(ActionSet([.pull, .push]).satisfies(.pull))
        #expect(ActionSet([.pull, .push]).satisfies([.pull, .push]))
        #expect(!ActionSet.pull.satisfies([.pull, .push]))
        #expect(!ActionSet.delete.satisfies(.pull))
    }

    @Test("an action list parses a comma-separated list", arguments: [
        ("pull", ActionSet.pull), ("pull,push", [.pull, .push]), ("delete,*", .all), ("push,push", .push),
    ] as [(String, ActionSet)])
    func parsesList(_ text: String, _ expected: ActionSet) throws {
        #expect(try ActionSet(list: text) == expected)
    }

    @Test("unknown, empty or differently cased actions are refused with invalidAction", arguments: [
        "", "pull,", ",pull", "pull,,push", "Pull", "read", "pull push", "**",
    ])
    func refusesBadList(_ text: String) {
        expectPolicyError(.invalidAction) { try ActionSet(list: text) }
    }
}

@Suite("Repository names")
struct RepositoryNameTests {
    @Test(
        "names that follow the reference grammar are accepted",
        arguments: [
            "a", "a/b", "a.b_c__d-e--f/g", "0", "team/app/v1.2", "a-----b", String(repeating: "a", count: 255),
            String(repeating: "ab/", count: 84) + "abc",
        ])
    func acceptsValidName(_ name: String) throws {
        #expect(try RepositoryName(name).value == name)
        #expect(try RepositoryName(name).description == name)
    }

    @Test(
        "names that break the reference grammar are refused with invalidRepositoryName",
        arguments: [
            "", "A", "team/App", "a..b", "a_", "-a", "a-", "_a", ".a", "a//b", "/a", "a/", "a___b", "a_.b", "a b", "a:b",
            "a@b", "é", String(repeating: "a", count: 256), "localhost:5000/a",
        ])
    func refusesInvalidName(_ name: String) {
        expectPolicyError(.invalidRepositoryName) { try RepositoryName(name) }
    }

    @Test("the message names the offending component")
    func messageNamesComponent() {
        expectPolicyError(.invalidRepositoryName, messageContains: ["\"b..c\"", "\"a/b..c\""]) { try RepositoryName("a/b..c") }
        expectPolicyError(.invalidRepositoryName, messageContains: ["256", "255"]) {
            try RepositoryName(String(repeating: "a", count: 256))
        }
    }

    @Test(
        "a registry host is accepted only when allowed",
        arguments: ["localhost:5000/team/app", "localhost/app", "registry.example.com/app", "10.0.0.1:443/a/b"])
    func hostOnlyWhenAllowed(_ name: String) throws {
        #expect(try RepositoryName(name, allowingHost: true).value == name)
        if name.contains(":") {
            expectPolicyError(.invalidRepositoryName) { try RepositoryName(name) }
        }
    }

    @Test(
        "a malformed registry host is refused even when hosts are allowed",
        arguments: ["-bad.example/app", "localhost:/app", "localhost:50a/app", "a..b:5000/app", "localhost:5000"])
    func refusesMalformedHost(_ name: String) {
        expectPolicyError(.invalidRepositoryName) { try RepositoryName(name, allowingHost: true) }
    }

    @Test("255 characters counts the host too")
    func lengthIncludesHost() {
        let name = "localhost:5000/" + String(repeating: "a", count: 241)
        #expect(name.count == 256)
        expectPolicyError(.invalidRepositoryName) { try RepositoryName(name, allowingHost: true) }
        #expect((try? RepositoryName(String(name.dropLast()), allowingHost: true)) != nil)
    }
}
