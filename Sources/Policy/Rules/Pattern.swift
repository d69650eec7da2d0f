/// A string pattern of the rule language: a glob, or a regular expression written `/…/`.
///
/// In a glob, `*` matches within one path segment (no `/`), `**` matches across segments,
/// `?` matches one character other than `/`, and `\` escapes the next character. Globs and
/// regular expressions both match the whole string.
public struct Pattern: Sendable, CustomStringConvertible {
    enum Storage: Sendable {
        case glob([GlobToken])
        case regex(CompiledRegex)
    }

    enum GlobToken: Sendable, Equatable {
        case literal(UInt8)
        case segmentWildcard
        case anyWildcard
        case oneCharacter
    }

    /// The pattern as written.
    public let source: String
    let storage: Storage

    /// Compiles a pattern.
    /// - Throws: ``PolicyError/Code/invalidRule`` for a regular expression that does not compile.
    public init(_ source: String) throws {
        try self.init(source, isRegex: Self.isRegex(source))
    }

    /// Compiles `source` as a regex (`/…/`) or a glob as told, whatever its shape: placeholder
    /// expansions must never switch a glob into a regular expression.
    init(_ source: String, isRegex: Bool) throws {
        self.source = source
        if isRegex {
            let body = Self.isRegex(source) ? String(source.dropFirst().dropLast()) : source
            self.storage = .regex(try CompiledRegex(body))
        } else {
            self.storage = .glob(Self.tokens(glob: source))
        }
    }

    /// Whether `source` is written as a regular expression.
    static func isRegex(_ source: String) -> Bool {
        source.count >= 2 && source.hasPrefix("/") && source.hasSuffix("/")
    }

    /// Whether the whole of `text` matches.
    public func matches(_ text: String) -> Bool {
        switch storage {
        case .glob(let tokens): Self.match(tokens[...], Array(text.utf8)[...])
        case .regex(let regex): regex.matches(text)
        }
    }

    public var description: String { source }

    static func tokens(glob: String) -> [GlobToken] {
        var tokens: [GlobToken] = []
        var bytes = Array(glob.utf8)[...]
        while let byte = bytes.popFirst() {
            switch byte {
            case UInt8(ascii: "\\"):
                if let next = bytes.popFirst() { tokens.append(.literal(next)) } else { tokens.append(.literal(byte)) }
            case UInt8(ascii: "*"):
                if bytes.first == UInt8(ascii: "*") {
                    bytes.removeFirst()
                    tokens.append(.anyWildcard)
                } else {
                    tokens.append(.segmentWildcard)
                }
            case UInt8(ascii: "?"):
                tokens.append(.oneCharacter)
            default:
                tokens.append(.literal(byte))
            }
        }
        return tokens
    }

    /// Escapes `text` so that it matches only itself inside a glob.
    static func escapeGlob(_ text: String) -> String {
        var result = ""
        for character in text {
            if character == "*" || character == "?" || character == "\\" { result.append("\\") }
            result.append(character)
        }
        return result
    }

    static func match(_ pattern: ArraySlice<GlobToken>, _ text: ArraySlice<UInt8>) -> Bool {
        guard let token = pattern.first else { return text.isEmpty }
        let rest = pattern.dropFirst()
        switch token {
        case .literal(let byte):
            return text.first == byte && match(rest, text.dropFirst())
        case .oneCharacter:
            guard let first = text.first, first != UInt8(ascii: "/") else { return false }
            return match(rest, text.dropFirst())
        case .segmentWildcard, .anyWildcard:
            var candidate = text
            while true {
                if match(rest, candidate) { return true }
                guard let first = candidate.first else { return false }
                if token == .segmentWildcard && first == UInt8(ascii: "/") { return false }
                candidate = candidate.dropFirst()
            }
        }
    }
}

/// A compiled regular expression that matches whole strings.
struct CompiledRegex: @unchecked Sendable {
    // Regex values are immutable once compiled; the wrapper only restates that for Swift 6.
    let regex: Regex<AnyRegexOutput>

    init(_ source: String) throws {
        do {
            self.regex = try Regex(source)
        } catch {
            throw PolicyError(.invalidRule, "regular expression /\(source)/ does not compile", underlying: error)
        }
    }

    func matches(_ text: String) -> Bool {
        (try? regex.wholeMatch(in: text)) != nil
    }
}
