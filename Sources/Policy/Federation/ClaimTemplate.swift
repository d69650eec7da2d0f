/// A text with `${claims:NAME}` placeholders, filled in from a verified token's claims:
/// `ci:${claims:project_path}` → `ci:team-a/app`.
public struct ClaimTemplate: Sendable, Equatable, CustomStringConvertible {
    enum Part: Sendable, Equatable {
        case literal(String)
        case claim(String)
    }

    let parts: [Part]
    /// The template as written.
    public let source: String

    /// Parses `source`.
    /// - Throws: ``PolicyError/Code/invalidRule`` for an unclosed or unknown placeholder.
    public init(_ source: String) throws {
        self.source = source
        var parts: [Part] = []
        var rest = Substring(source)
        while let start = rest.range(of: "${") {
            if start.lowerBound > rest.startIndex { parts.append(.literal(String(rest[..<start.lowerBound]))) }
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw PolicyError(.invalidRule, "unclosed placeholder in \"\(source)\"")
            }
            let placeholder = rest[start.upperBound..<end]
            guard placeholder.hasPrefix("claims:"), placeholder.count > "claims:".count else {
                throw PolicyError(.invalidRule, "unknown placeholder ${\(placeholder)} in \"\(source)\" (expected ${claims:NAME})")
            }
            parts.append(.claim(String(placeholder.dropFirst("claims:".count))))
            rest = rest[rest.index(after: end)...]
        }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
        self.parts = parts
    }

    /// The claim names the template uses.
    public var claimNames: [String] {
        parts.compactMap { if case .claim(let name) = $0 { name } else { nil } }
    }

    /// The values the template takes: one, or (when the template is a single placeholder whose
    /// claim is a list) one per list element.
    /// - Throws: ``PolicyError/Code/invalidToken`` naming a missing claim, or a list claim inside
    ///   a longer text.
    public func expand(_ claims: [String: [String]]) throws -> [String] {
        if parts.count == 1, case .claim(let name) = parts[0] {
            guard let values = claims[name], !values.isEmpty else { throw PolicyError(.invalidToken, "claim \(name) is missing") }
            return values
        }
        var text = ""
        for part in parts {
            switch part {
            case .literal(let literal):
                text += literal
            case .claim(let name):
                guard let values = claims[name], !values.isEmpty else { throw PolicyError(.invalidToken, "claim \(name) is missing") }
                guard values.count == 1 else { throw PolicyError(.invalidToken, "claim \(name) is a list and cannot go into \"\(source)\"") }
                text += values[0]
            }
        }
        return [text]
    }

    public var description: String { source }
}
