import ArgumentParser
import Foundation
import Policy
import PortcullisConfiguration

/// `portcullis check-config --config FILE`: validates a configuration and every file it names.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration file and print every problem with its key path.")

    @Option(name: .long, help: "The YAML configuration file.")
    var config: String

    func run() throws {
        do {
            let state = try GatewayState.load(try ConfigurationLoader.load(path: config))
            let configuration = state.configuration
            print("\(config): OK")
            print("  listen \(configuration.listen), public URL \(configuration.publicURL), realm \(configuration.realm)")
            for target in state.upstreamTargets {
                let upstream = target.configuration
                var share = upstream.isPrimary ? (state.upstreamTargets.count > 1 ? " (primary)" : "") : ""
                if !upstream.isPrimary {
                    share = " (" + ([upstream.weight > 0 ? "\(upstream.weight)% of repositories" : nil]
                        + upstream.repositories.map { Optional($0) }).compactMap { $0 }.joined(separator: ", ") + ")"
                }
                let name = state.upstreamTargets.count > 1 ? " \(upstream.name)" : ""
                print("  upstream\(name) \(upstream.url), registry \(upstream.registryVersion), key hint \(target.minter.hint)\(share)")
            }
            print("  \(configuration.rules.count) rules, \(state.credentials.htpasswd?.entries.count ?? 0) htpasswd users, token grant \(configuration.token.grant.rawValue)")
            if let ldap = configuration.ldap {
                print("  LDAP accounts from \(ldap.url)\(ldap.startTLS ? " (StartTLS)" : "")")
            }
            for issuer in configuration.oidc {
                print("  OIDC issuer \(issuer.issuer), audiences \(issuer.audiences.joined(separator: ",")), account \(issuer.account)")
            }
        } catch var error as ConfigurationErrors {
            // The file's own problems did not keep a configuration from being built: check what
            // the files it names hold too, so that one run lists everything.
            if let partial = error.partial {
                do {
                    _ = try GatewayState.load(partial)
                } catch let more as ConfigurationErrors {
                    error.problems += more.problems.filter { !error.problems.contains($0) }
                }
            }
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
