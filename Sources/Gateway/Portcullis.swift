import ArgumentParser

/// The `portcullis` command.
@main
struct Portcullis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portcullis",
        abstract: "An authenticating reverse proxy and token server in front of a Docker/OCI registry.",
        subcommands: [
            ServeCommand.self, CheckConfigCommand.self, KeysCommand.self, RegistryConfigCommand.self, TokenCommand.self,
            DoctorCommand.self, RobotCommand.self, DemoCommand.self, PruneCommand.self, TagsCommand.self, PolicyCommand.self, VerifyCommand.self,
            StateCommand.self,
        ]
    )
}
