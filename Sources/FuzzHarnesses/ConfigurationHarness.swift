import PortcullisConfiguration

/// Fuzzes the configuration file reader: any text yields a configuration or a list of problems,
/// never a crash; file paths in an accepted configuration are absolute, and a refusal
/// always names at least one problem.
enum ConfigurationHarness {
    static func run(_ input: [UInt8]) throws(FuzzFinding) {
        let text = String(decoding: input, as: UTF8.self)
        do {
            let configuration = try ConfigurationLoader.parse(text, path: "/portcullis-fuzz/portcullis.yaml")
            let paths = [configuration.token.key, configuration.token.certificate, configuration.htpasswd, configuration.robots]
            for case let path? in paths where !path.hasPrefix("/") {
                throw FuzzFinding("configuration", "the file path \(String(reflecting: path)) was not resolved against the configuration's directory")
            }
        } catch let finding as FuzzFinding {
            throw finding
        } catch let errors as ConfigurationErrors {
            guard !errors.problems.isEmpty else {
                throw FuzzFinding("configuration", "the file was refused without a single problem named")
            }
        } catch {
            throw FuzzFinding("configuration", "the reader threw \(type(of: error)) instead of ConfigurationErrors: \(error)")
        }
    }
}
