import Policy
import Testing

private func repo(_ name: String, _ actions: ActionSet = .pull) -> Scope {
    Scope(resource: Resource(type: Resource.repositoryType, name: name), actions: actions)
}

@Suite("Rules: first match wins, no match denies")
struct RuleOrderTests {
    let alice = Identity.user("alice")

    @Test("the first matching rule decides even when a later one would grant more")
    func firstMatchWins() throws {
        let rules = RuleSet([
            try Rule(name: "team/*", actions: ["pull"]),
            try Rule(name: "**", actions: ["*"]),
        ])
        let decision = rules.decide(repo("team/app", [.pull, .push]), for: alice)
        #expect(decision.granted == .pull)
        #expect(decision.ruleIndex == 0)
        let other = rules.decide(repo("other/app", [.pull, .push]), for: alice)
        #expect(other.granted == [.pull, .push])
        #expect(other.ruleIndex == 1)
    }

    @Test("a request no rule matches is denied, and says so")
    func noMatchDenies() throws {
        let rules = RuleSet([try Rule(name: "team/**", actions: ["*"])])
        let decision = rules.decide(repo("elsewhere/app"), for: alice)
        #expect(decision.granted.isEmpty)
        #expect(decision.ruleIndex == nil)
        #expect(decision.rule == nil)
        #expect(decision.description.contains("no rule matched"))
        #expect(RuleSet([]).decide(repo("a"), for: alice).granted.isEmpty)
    }

    @Test("a matching rule with `actions: []` denies and stops the search")
    func emptyActionsDeny() throws {
        let rules = RuleSet([
            try Rule(name: "secret/**", actions: []),
            try Rule(name: "**", actions: ["*"]),
        ])
        let decision = rules.decide(repo("secret/app", .all), for: alice)
        #expect(decision.granted.isEmpty)
        #expect(decision.ruleIndex == 0)
        #expect(decision.description.contains("rule #1"))
        #expect(decision.description.contains("nothing granted"))
        #expect(rules.decide(repo("public/app", .pull), for: alice).granted == .pull)
    }

    @Test("`*` in a rule grants every action, `*` itself included", arguments: [
        ActionSet.pull, [.pull, .push], [.delete], .all,
    ])
    func starGrantsAll(_ requested: ActionSet) throws {
        let rules = RuleSet([try Rule(name: "**", actions: ["*"])])
        #expect(rules.decide(repo("a/b", requested), for: alice).granted == requested)
    }

    @Test("named actions do not grant `*`: pull,push,delete on a `*` request grants those three")
    func namedActionsDoNotGrantStar() throws {
        let rules = RuleSet([try Rule(name: "**", actions: ["pull", "push", "delete"])])
        let grant = rules.grant([repo("a/b", .all)], to: alice)
        #expect(grant.decisions[0].granted == [.pull, .push, .delete])
        #expect(grant.scopes.map(\.description) == ["repository:a/b:pull,push,delete"])
        #expect(!grant.isComplete)
        #expect(grant.missing.map(\.description) == ["repository:a/b:*"])
    }

    @Test("the explanation names the deciding rule by its 1-based number and shows it")
    func explanationNamesRule() throws {
        let rules = RuleSet([
            try Rule(name: "x/**", account: "bob", actions: ["*"]),
            try Rule(name: "x/**", account: "alice", actions: ["pull"]),
            try Rule(name: "**", actions: ["*"]),
        ])
        let decision = rules.decide(repo("x/app", [.pull, .push]), for: alice)
        #expect(decision.ruleIndex == 1)
        let text = decision.description
        #expect(text.contains("rule #2"), "\(text)")
        #expect(!text.contains("rule #1") && !text.contains("rule #3"), "\(text)")
        #expect(text.contains("account: alice"), "\(text)")
        #expect(text.contains("repository:x/app:pull,push"), "\(text)")
        #expect(text.contains("granted pull"), "\(text)")
    }

    @Test("Grant.scopes is requested ∩ allowed per scope, and Grant.missing lists the incomplete requests")
    func grantIntersectsAndListsMissing() throws {
        let rules = RuleSet([
            try Rule(name: "mine/**", actions: ["*"]),
            try Rule(name: "shared/**", actions: ["pull"]),
            try Rule(type: "registry", name: "catalog", actions: ["*"]),
        ])
        let requested = [
            repo("mine/app", [.pull, .push]),
            repo("shared/app", [.pull, .push]),
            repo("forbidden/app", .pull),
            Scope(resource: .catalog, actions: .all),
        ]
        let grant = rules.grant(requested, to: alice)
        #expect(grant.decisions.count == 4)
        #expect(grant.scopes.map(\.description) == ["repository:mine/app:pull,push", "repository:shared/app:pull", "registry:catalog:*"])
        #expect(grant.missing.map(\.description) == ["repository:shared/app:pull,push", "repository:forbidden/app:pull"])
        #expect(!grant.isComplete)
        #expect(rules.grant([repo("mine/x", .all)], to: alice).isComplete)
        #expect(rules.grant([], to: alice).isComplete)
        #expect(grant.description.contains("user alice"))
    }

    @Test("a rule matches only its resource type")
    func typeMustMatch() throws {
        let rules = RuleSet([try Rule(name: "**", actions: ["*"])])
        #expect(rules.decide(Scope(resource: .catalog, actions: .all), for: alice).granted.isEmpty)
        let registryRules = RuleSet([try Rule(type: "registry", name: "catalog", actions: ["*"])])
        #expect(registryRules.decide(Scope(resource: .catalog, actions: .all), for: alice).granted == .all)
        #expect(registryRules.decide(repo("catalog"), for: alice).granted.isEmpty)
    }
}

@Suite("Rules: name patterns")
struct RuleNameTests {
    struct NameCase: Sendable, CustomTestStringConvertible {
        var pattern: String
        var matching: [String]
        var notMatching: [String]
        var testDescription: String { pattern }
    }

    static let cases: [NameCase] = [
        NameCase(pattern: "app", matching: ["app"], notMatching: ["app2", "team/app", "ap"]),
        NameCase(pattern: "*", matching: ["app", "a.b-c"], notMatching: ["team/app", "a/b"]),
        NameCase(pattern: "**", matching: ["app", "team/app", "a/b/c/d"], notMatching: []),
        NameCase(pattern: "team/*", matching: ["team/app", "team/x"], notMatching: ["team/a/b", "team", "other/app"]),
        NameCase(pattern: "team/**", matching: ["team/app", "team/a/b"], notMatching: ["team", "teams/app", "other/team/app"]),
        NameCase(pattern: "*/app", matching: ["team/app", "x/app"], notMatching: ["app", "a/b/app"]),
        NameCase(pattern: "**/app", matching: ["a/app", "a/b/app"], notMatching: ["app", "a/app2"]),
        NameCase(pattern: "app-?", matching: ["app-1", "app-x"], notMatching: ["app-", "app-10", "app-/"]),
        NameCase(pattern: "team/app\\*", matching: ["team/app*"], notMatching: ["team/app", "team/apps"]),
        NameCase(pattern: "/team-(a|b)/.+/", matching: ["team-a/app", "team-b/x/y"], notMatching: ["team-c/app", "team-a", "xteam-a/app"]),
        NameCase(pattern: "/app/", matching: ["app"], notMatching: ["team/app", "apps"]),
        NameCase(pattern: "/[a-z]+/", matching: ["app"], notMatching: ["team/app", "app1"]),
    ]

    @Test("a name pattern matches whole names; `*` stays within a segment, `**` crosses them", arguments: cases)
    func namePattern(_ nameCase: NameCase) throws {
        let rules = RuleSet([try Rule(name: nameCase.pattern, actions: ["pull"])])
        let alice = Identity.user("alice")
        for name in nameCase.matching {
            #expect(rules.decide(repo(name), for: alice).granted == .pull, "\(nameCase.pattern) should match \(name)")
        }
        for name in nameCase.notMatching {
            #expect(rules.decide(repo(name), for: alice).granted.isEmpty, "\(nameCase.pattern) should not match \(name)")
        }
    }

    @Test("`${account}/**` gives alice everything below alice/ and nothing else")
    func accountPlaceholder() throws {
        let rules = RuleSet([try Rule(name: "${account}/**", actions: ["*"])])
        let alice = Identity.user("alice")
        #expect(rules.decide(repo("alice/app", .all), for: alice).granted == .all)
        #expect(rules.decide(repo("alice/team/app", .all), for: alice).granted == .all)
        #expect(rules.decide(repo("bob/app"), for: alice).granted.isEmpty)
        #expect(rules.decide(repo("alice"), for: alice).granted.isEmpty)
        #expect(rules.decide(repo("alicex/app"), for: alice).granted.isEmpty)
        #expect(rules.decide(repo("bob/app"), for: .user("bob")).granted == .pull)
    }

    @Test("an account named with glob characters matches only itself, never a wider set", arguments: ["a*", "a**", "a?", "a\\"])
    func accountDoesNotWidenGlob(_ account: String) throws {
        let rules = RuleSet([try Rule(name: "${account}/*", actions: ["pull"])])
        let caller = Identity.user(account)
        #expect(rules.decide(repo(account + "/app"), for: caller).granted == .pull)
        #expect(rules.decide(repo("ab/app"), for: caller).granted.isEmpty)
        #expect(rules.decide(repo("a/app"), for: caller).granted.isEmpty)
        #expect(rules.decide(repo("a/b/app"), for: caller).granted.isEmpty)
    }

    @Test("in a regular-expression name, an expanded account is literal", arguments: ["a.b", "a+", "x|.*", "(.*)"])
    func accountIsLiteralInRegex(_ account: String) throws {
        let rules = RuleSet([try Rule(name: "/${account}(/.+)?/", actions: ["pull"])])
        let caller = Identity.user(account)
        #expect(rules.decide(repo(account), for: caller).granted == .pull)
        #expect(rules.decide(repo(account + "/app"), for: caller).granted == .pull)
        #expect(rules.decide(repo("aXb"), for: caller).granted.isEmpty)
        #expect(rules.decide(repo("aa"), for: caller).granted.isEmpty)
        #expect(rules.decide(repo("other/app"), for: caller).granted.isEmpty)
    }

    @Test("an account or label value that looks like `/regex/` must not turn a glob name into a regular expression")
    func expandedValueDoesNotBecomeRegex() throws {
        // Account pattern `**`: the default `*` stays within one segment and so never matches an
        // account that contains `/`.
        let byAccount = RuleSet([try Rule(name: "${account}", account: "**", actions: ["*"])])
        let byLabel = RuleSet([try Rule(name: "${labels:team}", actions: ["*"])])
        let sneakyAccount = Identity.user("/.+/")
        let sneakyLabel = Identity.user("mallory", labels: ["team": ["/.+/"]])
        // Control: the same templates with ordinary values match only those values.
        #expect(byAccount.decide(repo("mallory"), for: .user("mallory")).granted == .pull)
        #expect(byAccount.decide(repo("victim"), for: .user("mallory")).granted.isEmpty)
        #expect(byLabel.decide(repo("web"), for: .user("m", labels: ["team": ["web"]])).granted == .pull)
        #expect(byLabel.decide(repo("victim"), for: .user("m", labels: ["team": ["web"]])).granted.isEmpty)
        #expect(byAccount.decide(repo("victim"), for: sneakyAccount).granted.isEmpty)
        #expect(byLabel.decide(repo("victim"), for: sneakyLabel).granted.isEmpty)
    }

    @Test("`${labels:team}` expands to each of the caller's values; no value matches nothing")
    func labelPlaceholder() throws {
        let rules = RuleSet([try Rule(name: "${labels:team}/**", actions: ["pull", "push"])])
        let member = Identity.user("carol", labels: ["team": ["web", "payments"]])
        #expect(rules.decide(repo("web/app", [.pull, .push]), for: member).granted == [.pull, .push])
        #expect(rules.decide(repo("payments/api/v2"), for: member).granted == .pull)
        #expect(rules.decide(repo("ops/app"), for: member).granted.isEmpty)
        #expect(rules.decide(repo("web"), for: member).granted.isEmpty)
        #expect(rules.decide(repo("web/app"), for: .user("carol")).granted.isEmpty)
        #expect(rules.decide(repo("web/app"), for: .user("carol", labels: ["team": []])).granted.isEmpty)
    }

    @Test("placeholders combine: `${labels:team}/${account}/*`")
    func combinedPlaceholders() throws {
        let rules = RuleSet([try Rule(name: "${labels:team}/${account}/*", actions: ["pull"])])
        let caller = Identity.user("dave", labels: ["team": ["web", "ops"]])
        #expect(rules.decide(repo("web/dave/app"), for: caller).granted == .pull)
        #expect(rules.decide(repo("ops/dave/app"), for: caller).granted == .pull)
        #expect(rules.decide(repo("web/erin/app"), for: caller).granted.isEmpty)
        #expect(rules.decide(repo("web/dave/a/b"), for: caller).granted.isEmpty)
    }
}

@Suite("Rules: accounts and labels")
struct RuleAccountTests {
    @Test("`anonymous` matches only callers without credentials, even against a user named anonymous")
    func anonymousMatchesOnlyAnonymous() throws {
        let rules = RuleSet([try Rule(name: "public/**", account: "anonymous", actions: ["pull"])])
        #expect(rules.decide(repo("public/app"), for: .anonymous).granted == .pull)
        #expect(rules.decide(repo("public/app"), for: .user("alice")).granted.isEmpty)
        #expect(rules.decide(repo("public/app"), for: .user("anonymous")).granted.isEmpty)
        #expect(rules.decide(repo("public/app"), for: Identity(account: "anonymous", kind: .robot)).granted.isEmpty)
    }

    @Test("no account pattern other than `anonymous` matches an anonymous caller", arguments: ["*", "**", "/.*/", ""])
    func patternsNeverMatchAnonymous(_ account: String) throws {
        let rules = RuleSet([try Rule(name: "**", account: account, actions: ["*"])])
        #expect(rules.decide(repo("public/app"), for: .anonymous).granted.isEmpty)
    }

    @Test("`*` matches every authenticated caller, user or robot")
    func starMatchesAuthenticated() throws {
        let rules = RuleSet([try Rule(name: "**", actions: ["pull"])])
        #expect(rules.decide(repo("a"), for: .user("alice")).granted == .pull)
        #expect(rules.decide(repo("a"), for: Identity(account: "ci", kind: .robot)).granted == .pull)
    }

    @Test("`${account}` never matches for an anonymous caller")
    func accountPlaceholderNeverMatchesAnonymous() throws {
        let rules = RuleSet([try Rule(name: "${account}/**", account: "anonymous", actions: ["pull"])])
        #expect(rules.decide(repo("x/app"), for: .anonymous).granted.isEmpty)
        #expect(rules.decide(repo("/app"), for: .anonymous).granted.isEmpty)
    }

    @Test("account globs and regular expressions", arguments: [
        ("ci-*", ["ci-1", "ci-builder"], ["ci", "xci-1", "ci-1/x"]),
        ("/ci-[0-9]+/", ["ci-1", "ci-42"], ["ci-x", "ci-1a", "xci-1"]),
        ("alice", ["alice"], ["Alice", "alice2"]),
    ] as [(String, [String], [String])])
    func accountPatterns(_ pattern: String, _ matching: [String], _ notMatching: [String]) throws {
        let rules = RuleSet([try Rule(name: "**", account: pattern, actions: ["pull"])])
        for account in matching {
            #expect(rules.decide(repo("a"), for: .user(account)).granted == .pull, "\(pattern) should match \(account)")
        }
        for account in notMatching {
            #expect(rules.decide(repo("a"), for: .user(account)).granted.isEmpty, "\(pattern) should not match \(account)")
        }
    }

    @Test("every label pattern must match one of the caller's values for that label")
    func labelsMustAllMatch() throws {
        let rules = RuleSet([try Rule(name: "**", labels: ["team": "pay*", "env": "/prod|stage/"], actions: ["pull"])])
        #expect(rules.decide(repo("a"), for: .user("u", labels: ["team": ["web", "payments"], "env": ["prod"]])).granted == .pull)
        #expect(rules.decide(repo("a"), for: .user("u", labels: ["team": ["payments"], "env": ["stage"]])).granted == .pull)
        #expect(rules.decide(repo("a"), for: .user("u", labels: ["team": ["payments"], "env": ["dev"]])).granted.isEmpty)
        #expect(rules.decide(repo("a"), for: .user("u", labels: ["team": ["web"], "env": ["prod"]])).granted.isEmpty)
        #expect(rules.decide(repo("a"), for: .user("u", labels: ["team": ["payments"]])).granted.isEmpty)
        #expect(rules.decide(repo("a"), for: .user("u", labels: ["env": ["production"]])).granted.isEmpty)
        #expect(rules.decide(repo("a"), for: .user("u")).granted.isEmpty)
    }
}

@Suite("Rules: invalid rules")
struct InvalidRuleTests {
    @Test("malformed names are refused with invalidRule", arguments: [
        "/[unclosed/", "/(a/", "${user}/**", "${account", "${}/x", "${labels:}/x", "/${account}[/", "${ACCOUNT}/**",
    ])
    func invalidName(_ name: String) {
        expectPolicyError(.invalidRule) { try Rule(name: name, actions: ["pull"]) }
    }

    @Test("an unknown placeholder is named in the message")
    func unknownPlaceholderMessage() {
        expectPolicyError(.invalidRule, messageContains: ["${user}"]) { try Rule(name: "${user}/**", actions: ["pull"]) }
    }

    @Test("malformed accounts, labels, actions and types are refused with invalidRule")
    func invalidOtherParts() {
        expectPolicyError(.invalidRule) { try Rule(name: "**", account: "/(/", actions: ["pull"]) }
        expectPolicyError(.invalidRule) { try Rule(name: "**", labels: ["team": "/[/"], actions: ["pull"]) }
        expectPolicyError(.invalidRule, messageContains: ["\"fly\""]) { try Rule(name: "**", actions: ["pull", "fly"]) }
        expectPolicyError(.invalidRule) { try Rule(name: "**", actions: ["pull,push"]) }
        expectPolicyError(.invalidRule) { try Rule(type: "", name: "**", actions: ["pull"]) }
    }

    @Test("well-formed rules are accepted and describe themselves as written")
    func validRuleDescription() throws {
        let rule = try Rule(name: "${account}/**", account: "/ci-.*/", labels: ["team": "web"], actions: ["push", "pull"])
        #expect(rule.description == "{account: /ci-.*/, type: repository, name: ${account}/**, labels: {team: web}, actions: [pull, push]}")
        #expect(try Rule(name: "**", actions: []).actions.isEmpty)
        #expect(try Rule(name: "**", actions: ["*"]).actions == .all)
    }
}

@Suite("token.grant: requested or repository")
struct TokenGrantModeTests {
    let alice = Identity.user("alice")
    let rules = RuleSet([
        try! Rule(name: "alice/**", actions: ["pull", "push"]),
        try! Rule(name: "shared/**", actions: ["pull"]),
    ])

    @Test("requested grants exactly the requested actions the rules allow")
    func requestedGrantsTheRequest() {
        let grant = rules.grant([repo("alice/app", .pull)], to: alice, mode: .requested)
        #expect(grant.scopes == [repo("alice/app", .pull)])
        #expect(grant.isComplete)
    }

    @Test("repository grants every action the rules allow on each requested repository, and judges completeness by the request")
    func repositoryWidensToTheRules() {
        let grant = rules.grant([repo("alice/app", .pull), repo("shared/base", .pull), repo("bob/app", .pull)], to: alice, mode: .repository)
        #expect(grant.scopes == [repo("alice/app", [.pull, .push]), repo("shared/base", .pull)])
        #expect(!grant.isComplete)
        #expect(grant.missing == [repo("bob/app", .pull)])
        let catalog = Scope(resource: .catalog, actions: .wildcard)
        #expect(rules.grant([catalog], to: alice, mode: .repository).scopes.isEmpty, "a non-repository scope is not widened")
    }
}

@Suite("Account patterns: account names with a slash")
struct AccountPatternTests {
    @Test("`*` alone matches every account, one with a `/` included; elsewhere in an account glob `*` stops at `/` and `**` crosses it")
    func slashesInAccountNames() throws {
        let ci = Identity(account: "ci:team-a/app", kind: .user)
        let resource = Resource(type: Resource.repositoryType, name: "team-a/app")
        #expect(try Rule(name: "**", actions: ["pull"]).matches(resource, for: ci))
        #expect(try Rule(name: "**", account: "ci:**", actions: ["pull"]).matches(resource, for: ci))
        #expect(try !Rule(name: "**", account: "ci:*", actions: ["pull"]).matches(resource, for: ci))
        #expect(try !Rule(name: "**", account: "ci:team-b/**", actions: ["pull"]).matches(resource, for: ci))
        #expect(try !Rule(name: "**", actions: ["pull"]).matches(resource, for: .anonymous))
    }
}
