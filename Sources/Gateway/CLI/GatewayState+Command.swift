import ArgumentParser
import Foundation
import PortcullisConfiguration

extension GatewayState {
    /// Loads the configuration at `path` and every file it names for a CLI command; on any
    /// problem prints each one with its key path to standard error and exits with `status`.
    static func loadForCommand(path: String, exitStatus status: Int32 = 1) throws -> GatewayState {
        do {
            return try GatewayState.load(try ConfigurationLoader.load(path: path))
        } catch let error as ConfigurationErrors {
            FileHandle.standardError.write(Data("portcullis: invalid configuration\n\(error)\n".utf8))
            throw ExitCode(status)
        }
    }
}
