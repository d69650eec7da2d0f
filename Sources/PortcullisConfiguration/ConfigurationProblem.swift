/// One thing wrong with a configuration file, located by its key path.
package struct ConfigurationProblem: Error, Sendable, CustomStringConvertible, Equatable {
    /// Dotted key path, e.g. `upstream.registry_version` or `rules[2].actions`.
    package var keyPath: String
    /// What is wrong and what would be right.
    package var message: String

    package init(keyPath: String, message: String) {
        self.keyPath = keyPath
        self.message = message
    }

    package var description: String { keyPath.isEmpty ? message : "\(keyPath): \(message)" }
}

/// Every problem found in a configuration file; thrown when there is at least one.
package struct ConfigurationErrors: Error, Sendable, CustomStringConvertible {
    /// The file that was read.
    package var file: String
    /// The problems, in file order.
    package var problems: [ConfigurationProblem]
    /// The configuration as far as it could be read, when the problems did not prevent building
    /// one: what the files it names hold can still be checked (`check-config` does).
    package var partial: GatewayConfiguration?
    /// What could not be checked because of these problems, if anything.
    package var unchecked: String?

    package init(file: String, problems: [ConfigurationProblem], partial: GatewayConfiguration? = nil, unchecked: String? = nil) {
        self.file = file
        self.problems = problems
        self.partial = partial
        self.unchecked = unchecked
    }

    package var description: String {
        "\(file): \(problems.count) problem\(problems.count == 1 ? "" : "s")\n" + problems.map { "  \($0)" }.joined(separator: "\n")
            + (unchecked.map { "\n  not checked: \($0)" } ?? "")
    }
}
