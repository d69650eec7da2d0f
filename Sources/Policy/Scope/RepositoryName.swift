/// A repository name that satisfies distribution's reference grammar.
///
/// A name is one or more path components separated by `/`, optionally preceded by a registry
/// host (`localhost:5000/team/app`). Each path component is lowercase alphanumerics separated
/// by `.`, `_`, `__` or one or more `-`; the whole name is at most 255 characters. The host
/// part is only ever seen in token scopes: the registry's own routes never carry one.
public struct RepositoryName: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The maximum length of a name, host included.
    public static let maximumLength = 255

    /// The validated name.
    public let value: String

    /// Validates `name`.
    /// - Parameter allowingHost: whether a leading registry host (with optional port) is accepted,
    ///   as in token scopes.
    /// - Throws: ``PolicyError/Code/invalidRepositoryName`` naming the offending component.
    public init(_ name: some StringProtocol, allowingHost: Bool = false) throws {
        let name = String(name)
        guard !name.isEmpty else {
            throw PolicyError(.invalidRepositoryName, "repository name is empty")
        }
        guard name.utf8.count <= Self.maximumLength else {
            throw PolicyError(
                .invalidRepositoryName,
                "repository name is \(name.utf8.count) characters long; the limit is \(Self.maximumLength)"
            )
        }
        var components = name.split(separator: "/", omittingEmptySubsequences: false)[...]
        if allowingHost, components.count > 1, let first = components.first, Self.looksLikeHost(first) {
            try Self.validateHost(first, in: name)
            components = components.dropFirst()
        }
        for component in components {
            try Self.validatePathComponent(component, in: name)
        }
        self.value = name
    }

    public var description: String { value }

    public static func < (lhs: RepositoryName, rhs: RepositoryName) -> Bool { lhs.value < rhs.value }

    /// distribution's rule: the first component is a host when it contains `.` or `:`, or is `localhost`.
    private static func looksLikeHost(_ component: Substring) -> Bool {
        component == "localhost" || component.contains(".") || component.contains(":")
            || component.contains(where: { $0.isUppercase })
    }

    private static func validateHost(_ host: Substring, in name: String) throws {
        let parts = host.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let hostname = parts[0]
        let labels = hostname.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            let bytes = Array(label.utf8)
            let valid =
                !bytes.isEmpty && isAlphanumeric(bytes.first!, allowUpper: true)
                && isAlphanumeric(bytes.last!, allowUpper: true)
                && bytes.allSatisfy { isAlphanumeric($0, allowUpper: true) || $0 == UInt8(ascii: "-") }
            guard valid else {
                throw PolicyError(.invalidRepositoryName, "invalid registry host \"\(host)\" in \"\(name)\"")
            }
        }
        if parts.count == 2 {
            let port = parts[1]
            guard !port.isEmpty, port.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                throw PolicyError(.invalidRepositoryName, "invalid port in registry host \"\(host)\" in \"\(name)\"")
            }
        }
    }

    /// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
    private static func validatePathComponent(_ component: Substring, in name: String) throws {
        let bytes = Array(component.utf8)
        func fail(_ why: String) -> PolicyError {
            PolicyError(.invalidRepositoryName, "invalid path component \"\(component)\" in \"\(name)\": \(why)")
        }
        guard !bytes.isEmpty else { throw fail("empty component") }
        var index = 0
        var expectAlphanumeric = true
        while index < bytes.count {
            let byte = bytes[index]
            if isAlphanumeric(byte, allowUpper: false) {
                expectAlphanumeric = false
                index += 1
                continue
            }
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") {
                throw fail("upper-case letters are not allowed")
            }
            guard !expectAlphanumeric else {
                throw fail("a separator must sit between lowercase letters or digits")
            }
            switch byte {
            case UInt8(ascii: "."):
                index += 1
            case UInt8(ascii: "_"):
                index += (index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "_")) ? 2 : 1
            case UInt8(ascii: "-"):
                while index < bytes.count && bytes[index] == UInt8(ascii: "-") { index += 1 }
            default:
                throw fail("character \"\(Character(Unicode.Scalar(byte)))\" is not allowed")
            }
            expectAlphanumeric = true
        }
        guard !expectAlphanumeric else { throw fail("must not end with a separator") }
    }

    private static func isAlphanumeric(_ byte: UInt8, allowUpper: Bool) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || (allowUpper && byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }
}
