import Policy
import Yams

extension ConfigurationLoader.Reader {
    /// `content:`: a list of rules about what repositories may hold, first match by repository.
    ///
    /// ```yaml
    /// content:
    ///   - repositories: ["release/**"]
    ///     immutable_tags: ["v*", "/^[0-9]+(\\.[0-9]+)*$/"]
    /// ```
    mutating func readContent(_ node: Node?) -> [ContentRule] {
        guard let node else { return [] }
        guard let sequence = node.sequence else {
            problem("content", "must be a list of content rules (repositories, immutable_tags)")
            return []
        }
        var rules: [ContentRule] = []
        for (index, item) in sequence.enumerated() {
            if let rule = readContentRule(item, index: index) { rules.append(rule) }
        }
        return rules
    }

    private mutating func readContentRule(_ node: Node, index: Int) -> ContentRule? {
        let keyPath = "content[\(index)]"
        guard let section = mapping(node, keyPath, allowed: ["repositories", "immutable_tags", "signed_by"]) else { return nil }
        let repositories = patterns(section["repositories"], "\(keyPath).repositories")
        if section["repositories"] == nil || repositories?.isEmpty == true {
            problem("\(keyPath).repositories", "is required: the repository patterns the rule applies to, e.g. [\"release/**\"]")
        }
        let immutableTags = patterns(section["immutable_tags"], "\(keyPath).immutable_tags")
        if section["signed_by"] != nil {
            problem(
                "\(keyPath).signed_by",
                "signature checks are not available in this version of Portcullis; it refuses to start rather than serve these repositories unchecked")
        } else if section["immutable_tags"] == nil {
            problem(keyPath, "says nothing about the repositories: give immutable_tags")
        }
        guard let repositories, !repositories.isEmpty, let immutableTags else { return nil }
        do {
            return try ContentRule(index: index, repositories: repositories, immutableTags: immutableTags)
        } catch {
            problem(keyPath, error.message)
            return nil
        }
    }

    /// A list of rule-language patterns, each checked where it stands.
    private mutating func patterns(_ node: Node?, _ keyPath: String) -> [String]? {
        guard let list = stringList(node, keyPath) else { return nil }
        var valid = true
        for (index, source) in list.enumerated() {
            do {
                _ = try Pattern(source)
            } catch let error as PolicyError {
                problem("\(keyPath)[\(index)]", error.message)
                valid = false
            } catch {
                problem("\(keyPath)[\(index)]", "\(error)")
                valid = false
            }
        }
        return valid ? list : nil
    }
}
