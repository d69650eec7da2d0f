import ArgumentParser
import Foundation
import Policy
import PortcullisConfiguration

/// `portcullis policy explain`: which rule decides a scope for an account with given labels.
struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Ask the rule list questions without a running gateway.",
        subcommands: [Explain.self])

    struct Explain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show which rule decides each scope for an account, with its labels (LDAP groups, OIDC claims, robot labels).",
            discussion: """
                A robot's labels come from the robots file; --label adds values (repeat it for several values of one \
                label: a rule matches if any value matches). With content rules, a line per repository names the content \
                rule that applies (and, with --tag, whether the tag is immutable). Exit status 0 when every scope is \
                granted in full, 1 otherwise.
                Example: portcullis policy explain --config portcullis.yaml --account alice --label group=platform \
                repository:platform/tool:pull,push
                """)

        @Option(name: .long, help: "The YAML configuration file.")
        var config: String

        @Option(name: .long, help: "The account name rules see (empty for anonymous).")
        var account: String

        @Option(name: .customLong("label"), help: ArgumentHelp("A label of the account, NAME=VALUE (repeatable).", valueName: "NAME=VALUE"))
        var labels: [String] = []

        @Option(name: .long, help: "Grant mode to explain: requested or repository (default: the configuration's token.grant).")
        var grant: String?

        @Option(name: .long, help: "A tag: also say whether content rules keep it immutable in each repository scope.")
        var tag: String?

        @Argument(help: "Scopes such as repository:team/app:pull,push or registry:catalog:*.")
        var scopes: [String]

        func validate() throws {
            for label in labels where !label.contains("=") || label.hasPrefix("=") {
                throw ValidationError("--label \"\(label)\" is not NAME=VALUE")
            }
            if let grant, TokenGrantMode(rawValue: grant) == nil {
                throw ValidationError("--grant must be requested or repository (got \"\(grant)\")")
            }
            if scopes.isEmpty { throw ValidationError("give at least one scope, e.g. repository:team/app:pull") }
        }

        func run() throws {
            let state = try GatewayState.loadForCommand(path: config, exitStatus: 2)
            var requested: [Scope] = []
            for text in scopes {
                do {
                    requested.append(try Scope(parsing: text))
                } catch let error as PolicyError {
                    FileHandle.standardError.write(Data("portcullis: \(text): \(error.message)\n".utf8))
                    throw ExitCode(2)
                }
            }
            let now = Date().timeIntervalSince1970
            var identity = account.isEmpty ? Identity.anonymous : (try? state.credentials.currentIdentity(account: account, now: now)) ?? Identity(account: account, kind: .user)
            for label in labels {
                let parts = label.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                identity.labels[String(parts[0]), default: []].append(String(parts[1]))
            }
            let mode = grant.flatMap(TokenGrantMode.init(rawValue:)) ?? state.configuration.token.grant
            let result = state.rules.grant(requested, to: identity, mode: mode)
            print("account: \(identity)")
            if !identity.labels.isEmpty {
                print("labels: " + identity.labels.keys.sorted().map { "\($0)=\(identity.labels[$0]!.joined(separator: "|"))" }.joined(separator: " "))
            }
            print("grant mode: \(mode.rawValue)")
            for decision in result.decisions { print(decision.description) }
            if !state.contentRules.isEmpty {
                for scope in requested where scope.resource.type == Resource.repositoryType {
                    print(state.contentRules.explain(repository: scope.resource.name, tag: tag))
                }
            }
            print(result.isComplete ? "verdict: granted in full" : "verdict: not granted in full (missing \(result.missingActions.map(\.description).joined(separator: " ")))")
            if !result.isComplete { throw ExitCode(1) }
        }
    }
}
