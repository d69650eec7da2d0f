import Foundation
import Policy
import Yams

extension ConfigurationLoader.Reader {
    /// `content:`: a list of rules about what repositories may hold, first match by repository.
    ///
    /// ```yaml
    /// content:
    ///   - repositories: ["release/**"]
    ///     immutable_tags: ["v*", "/^[0-9]+(\\.[0-9]+)*$/"]
    ///   - repositories: ["prod/**"]
    ///     signed_by: [keys/release.pub]
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
        let immutableTags = section["immutable_tags"] == nil ? [] : patterns(section["immutable_tags"], "\(keyPath).immutable_tags")
        let signedBy = section["signed_by"] == nil ? [] : signatureKeys(section["signed_by"], "\(keyPath).signed_by")
        if section["immutable_tags"] == nil && section["signed_by"] == nil {
            problem(keyPath, "says nothing about the repositories: give immutable_tags and/or signed_by")
        }
        guard let repositories, !repositories.isEmpty, let immutableTags, let signedBy else { return nil }
        do {
            return try ContentRule(index: index, repositories: repositories, immutableTags: immutableTags, signedBy: signedBy)
        } catch {
            problem(keyPath, error.message)
            return nil
        }
    }

    /// The public keys of `signed_by`: PEM files, each read and checked where it stands.
    private mutating func signatureKeys(_ node: Node?, _ keyPath: String) -> [SignatureKey]? {
        guard let list = stringList(node, keyPath) else { return nil }
        if list.isEmpty {
            problem(keyPath, "must name at least one public key file (cosign.pub: ECDSA P-256, P-384 or P-521, RSA, or Ed25519)")
            return nil
        }
        var keys: [SignatureKey] = []
        var valid = true
        for (index, text) in list.enumerated() {
            let itemPath = "\(keyPath)[\(index)]"
            guard let resolved = path(Node(text), itemPath) else {
                valid = false
                continue
            }
            guard let data = FileManager.default.contents(atPath: resolved) else {
                valid = false
                continue
            }
            do {
                keys.append(try SignatureKey(pem: String(decoding: data, as: UTF8.self), name: text))
            } catch {
                problem(itemPath, "\(resolved): \(error.message)")
                valid = false
            }
        }
        return valid ? keys : nil
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
