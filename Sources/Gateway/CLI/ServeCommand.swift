import ArgumentParser
import Foundation
import Logging

/// `portcullis serve --config FILE`: runs the gateway.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the gateway.")

    @Option(name: .long, help: "The YAML configuration file.")
    var config: String

    func run() async throws {
        let state = try GatewayState.loadForCommand(path: config, exitStatus: 2)
        GatewayRunner.bootstrapLogging(
            level: state.configuration.logLevel, format: state.configuration.logFormat, audit: state.configuration.auditDestination)
        let logger = Logger(label: "portcullis")
        try await GatewayRunner.run(state: state, logger: logger)
        logger.notice("portcullis stopped")
    }
}
