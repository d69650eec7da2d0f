import Foundation
import PortcullisConfiguration

/// The problems ``GatewayState/load(_:previousKeys:)`` finds in the files a configuration names,
/// in the order they are found, shared by every section's builder.
struct StateProblems {
    /// Every problem so far, in order.
    var list: [ConfigurationProblem] = []

    /// Records that `keyPath` has a problem.
    mutating func problem(_ keyPath: String, _ message: String) {
        list.append(ConfigurationProblem(keyPath: keyPath, message: message))
    }

    /// The text of the file at `path`, named by `keyPath`; `nil`, with a problem, when it cannot
    /// be read.
    mutating func read(_ path: String, _ keyPath: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else {
            problem(keyPath, "cannot read \(path)")
            return nil
        }
        return String(decoding: data, as: UTF8.self)
    }
}
