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
            print("  upstream \(configuration.upstream.url), registry \(configuration.upstream.registryVersion), key hint \(state.upstreamMinter.hint)")
            print("  \(configuration.rules.count) rules, \(state.credentials.htpasswd?.entries.count ?? 0) htpasswd users, token grant \(configuration.token.grant.rawValue)")
            if let ldap = configuration.ldap {
                print("  LDAP accounts from \(ldap.url)\(ldap.startTLS ? " (StartTLS)" : "")")
            }
            for issuer in configuration.oidc {
                print("  OIDC issuer \(issuer.issuer), audiences \(issuer.audiences.joined(separator: ",")), account \(issuer.account)")
            }
        } catch let error as ConfigurationErrors {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
