import Policy
import Yams

extension ConfigurationLoader.Reader {
    /// `rules` (required, possibly empty): the rules whose entries were valid, in order.
    mutating func readRules(_ node: Node?) -> [Rule] {
        var rules: [Rule] = []
        if let node {
            if let sequence = node.sequence {
                for (index, item) in sequence.enumerated() {
                    if let rule = readRule(item, "rules[\(index)]") { rules.append(rule) }
                }
            } else {
                problem("rules", "must be a list of rules")
            }
        } else {
            problem("rules", "is required (without rules every request is denied)")
        }
        return rules
    }

    /// One entry of `rules`: `nil` when it is not a mapping, lacks `name`, or the Policy module
    /// refuses it (a bad pattern or action).
    mutating func readRule(_ node: Node, _ keyPath: String) -> Rule? {
        guard let section = mapping(node, keyPath, allowed: ["account", "type", "name", "labels", "actions"]) else {
            return nil
        }
        let account = string(section["account"], "\(keyPath).account") ?? "*"
        let type = string(section["type"], "\(keyPath).type") ?? Resource.repositoryType
        let name = string(section["name"], "\(keyPath).name", required: true)
        var labels: [String: String] = [:]
        if let labelNode = section["labels"] {
            if let mapping = labelNode.mapping {
                for (key, value) in mapping {
                    guard let label = key.string, let pattern = value.string else {
                        problem("\(keyPath).labels", "must map label names to patterns")
                        continue
                    }
                    labels[label] = pattern
                }
            } else {
                problem("\(keyPath).labels", "must be a mapping of label name to pattern")
            }
        }
        var actions: [String] = []
        if let actionNode = section["actions"] {
            if let sequence = actionNode.sequence {
                for item in sequence {
                    if let word = item.string { actions.append(word) } else { problem("\(keyPath).actions", "must be a list of action words") }
                }
            } else {
                problem("\(keyPath).actions", "must be a list such as [pull, push] ([] denies, [\"*\"] grants all)")
            }
        } else {
            problem("\(keyPath).actions", "is required ([] denies, [\"*\"] grants all)")
        }
        guard let name else { return nil }
        do {
            return try Rule(type: type, name: name, account: account, labels: labels, actions: actions)
        } catch let error as PolicyError {
            problem(keyPath, error.message)
            return nil
        } catch {
            problem(keyPath, "\(error)")
            return nil
        }
    }
}
