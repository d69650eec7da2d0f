/// A resource-name pattern of a rule, with `${account}` and `${labels:NAME}` placeholders that
/// expand to the caller's account and label values before matching.
///
/// Expanded values always match literally: an account called `a*` never widens a glob.
public struct NameTemplate: Sendable, CustomStringConvertible {
    enum Part: Sendable, Equatable {
        case text(String)
        case account
        case label(String)
    }

    /// The template as written.
    public let source: String
    let parts: [Part]
    let isRegex: Bool
    /// The compiled pattern when the template has no placeholders.
    let fixed: Pattern?

    /// Parses a template.
    /// - Throws: ``PolicyError/Code/invalidRule`` for an unknown or unterminated placeholder, or
    ///   a regular expression that does not compile.
    public init(_ source: String) throws {
        self.source = source
        self.isRegex = Pattern.isRegex(source)
        var parts: [Part] = []
        var remainder = Substring(source)
        while let start = remainder.range(of: "${") {
            if start.lowerBound > remainder.startIndex {
                parts.append(.text(String(remainder[..<start.lowerBound])))
            }
            guard let end = remainder[start.upperBound...].firstIndex(of: "}") else {
                throw PolicyError(.invalidRule, "unterminated placeholder in name \"\(source)\"")
            }
            let placeholder = remainder[start.upperBound..<end]
            if placeholder == "account" {
                parts.append(.account)
            } else if placeholder.hasPrefix("labels:"), placeholder.count > "labels:".count {
                parts.append(.label(String(placeholder.dropFirst("labels:".count))))
            } else {
                throw PolicyError(
                    .invalidRule,
                    "unknown placeholder ${\(placeholder)} in name \"\(source)\" (expected ${account} or ${labels:NAME})"
                )
            }
            remainder = remainder[remainder.index(after: end)...]
        }
        if !remainder.isEmpty { parts.append(.text(String(remainder))) }
        self.parts = parts
        if parts.allSatisfy({ if case .text = $0 { true } else { false } }) {
            self.fixed = try Pattern(source)
        } else {
            self.fixed = nil
            // Validate the shape once with placeholder stand-ins.
            _ = try Pattern(Self.render(parts, account: "a", labelValue: { _ in "a" }, isRegex: isRegex), isRegex: isRegex)
        }
    }

    /// Whether `name` matches for a caller with this identity.
    public func matches(_ name: String, for identity: Identity) -> Bool {
        if let fixed { return fixed.matches(name) }
        for expansion in expansions(for: identity) {
            if let pattern = try? Pattern(expansion, isRegex: isRegex), pattern.matches(name) { return true }
        }
        return false
    }

    /// Every pattern string the template expands to (one per combination of label values).
    func expansions(for identity: Identity) -> [String] {
        var results: [[Part]] = [[]]
        for part in parts {
            switch part {
            case .text, .account:
                results = results.map { $0 + [part] }
            case .label(let name):
                let values = identity.labels[name] ?? []
                results = results.flatMap { prefix in values.map { prefix + [.text(Self.escape($0, isRegex: isRegex))] } }
            }
        }
        if identity.kind == .anonymous && parts.contains(.account) { return [] }
        return results.map { Self.render($0, account: identity.account, labelValue: { _ in "" }, isRegex: isRegex) }
    }

    private static func render(_ parts: [Part], account: String, labelValue: (String) -> String, isRegex: Bool) -> String {
        parts.map { part in
            switch part {
            case .text(let text): text
            case .account: escape(account, isRegex: isRegex)
            case .label(let name): escape(labelValue(name), isRegex: isRegex)
            }
        }.joined()
    }

    private static func escape(_ value: String, isRegex: Bool) -> String {
        guard isRegex else { return Pattern.escapeGlob(value) }
        var result = ""
        for character in value {
            if "\\^$.|?*+()[]{}/-".contains(character) { result.append("\\") }
            result.append(character)
        }
        return result
    }

    public var description: String { source }
}
