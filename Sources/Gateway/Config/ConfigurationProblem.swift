/// One thing wrong with a configuration file, located by its key path.
struct ConfigurationProblem: Error, Sendable, CustomStringConvertible, Equatable {
    /// Dotted key path, e.g. `upstream.registry_version` or `rules[2].actions`.
    var keyPath: String
    /// What is wrong and what would be right.
    var message: String

    var description: String { keyPath.isEmpty ? message : "\(keyPath): \(message)" }
}

/// Every problem found in a configuration file; thrown when there is at least one.
struct ConfigurationErrors: Error, Sendable, CustomStringConvertible {
    /// The file that was read.
    var file: String
    /// The problems, in file order.
    var problems: [ConfigurationProblem]

    var description: String {
        "\(file): \(problems.count) problem\(problems.count == 1 ? "" : "s")\n" + problems.map { "  \($0)" }.joined(separator: "\n")
    }
}
