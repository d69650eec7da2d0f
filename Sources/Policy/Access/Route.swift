/// A `/v2/` request path read the way distribution's router reads it.
///
/// Candidate routes are tried in the registry's own order (manifests, tags, blobs, upload
/// start, upload session, referrers, catalog); a candidate matches only when every variable
/// part satisfies the registry's pattern, so a path resolves to the same repository here and in
/// the registry. Paths the registry would decode or rewrite before routing (percent-encoding,
/// `.`/`..` segments, empty segments) are never normalised: ``init(path:)`` refuses them.
public struct Route: Hashable, Sendable {
    /// The endpoint a path addresses.
    public enum Endpoint: Hashable, Sendable {
        /// `/v2/`: the API version check.
        case base
        /// `/v2/_catalog`.
        case catalog
        /// `/v2/<name>/manifests/<tag or digest>`.
        case manifest(reference: String)
        /// `/v2/<name>/blobs/<digest>`.
        case blob(digest: String)
        /// `/v2/<name>/blobs/uploads/`: starts an upload or mounts a blob.
        case uploadStart
        /// `/v2/<name>/blobs/uploads/<id>`: an upload session.
        case upload(id: String)
        /// `/v2/<name>/tags/list`.
        case tags
        /// `/v2/<name>/referrers/<digest>`.
        case referrers(digest: String)

        /// A bounded label for metrics and logs.
        public var template: String {
            switch self {
            case .base: "base"
            case .catalog: "catalog"
            case .manifest: "manifest"
            case .blob: "blob"
            case .uploadStart: "upload_start"
            case .upload: "upload"
            case .tags: "tags"
            case .referrers: "referrers"
            }
        }
    }

    /// The repository the path addresses, `nil` for ``Endpoint/base`` and ``Endpoint/catalog``.
    public var repository: RepositoryName?
    /// The endpoint within the repository.
    public var endpoint: Endpoint

    /// Creates a route from its parts.
    public init(repository: RepositoryName?, endpoint: Endpoint) {
        self.repository = repository
        self.endpoint = endpoint
    }

    /// Reads a request path (without the query string).
    /// - Throws: ``RouteRejection`` when the registry would not route the path as it stands.
    public init(path: String) throws(RouteRejection) {
        guard path.hasPrefix("/v2/") else {
            throw RouteRejection(.notFound, "path \"\(path)\" is not under /v2/")
        }
        if path.utf8.contains(UInt8(ascii: "%")) {
            throw RouteRejection(
                .badRequest,
                "percent-encoded bytes in \"\(path)\" are refused: the registry decodes them before routing"
            )
        }
        if let bad = path.utf8.first(where: { $0 < 0x21 || $0 > 0x7E || $0 == UInt8(ascii: "\\") }) {
            throw RouteRejection(.badRequest, "byte 0x\(String(bad, radix: 16)) is not allowed in a /v2/ path")
        }
        let rest = path.dropFirst(4)
        if rest.isEmpty {
            self.init(repository: nil, endpoint: .base)
            return
        }
        let segments = rest.split(separator: "/", omittingEmptySubsequences: false)
        for (index, segment) in segments.enumerated() {
            if segment == "." || segment == ".." {
                throw RouteRejection(.badRequest, "dot segment in \"\(path)\": the registry would redirect it elsewhere")
            }
            let isTrailing = index == segments.count - 1
            if segment.isEmpty && !isTrailing {
                throw RouteRejection(.badRequest, "empty segment in \"\(path)\": the registry would redirect it elsewhere")
            }
        }
        if segments == ["_catalog"] {
            self.init(repository: nil, endpoint: .catalog)
            return
        }
        guard let route = Self.match(segments) else {
            throw RouteRejection(.notFound, "no registry route matches \"\(path)\" (or the repository name is invalid)")
        }
        self = route
    }

    /// Tries the registry's routes in its own order.
    private static func match(_ segments: [Substring]) -> Route? {
        let count = segments.count
        func name(droppingLast n: Int) -> RepositoryName? {
            guard count > n else { return nil }
            return try? RepositoryName(segments[0..<(count - n)].joined(separator: "/"))
        }
        let last = segments[count - 1]
        if count >= 3, segments[count - 2] == "manifests", Grammar.isTag(last) || Grammar.isDigest(last),
            let repository = name(droppingLast: 2)
        {
            return Route(repository: repository, endpoint: .manifest(reference: String(last)))
        }
        if count >= 3, segments[count - 2] == "tags", last == "list", let repository = name(droppingLast: 2) {
            return Route(repository: repository, endpoint: .tags)
        }
        if count >= 3, segments[count - 2] == "blobs", Grammar.isDigest(last), let repository = name(droppingLast: 2) {
            return Route(repository: repository, endpoint: .blob(digest: String(last)))
        }
        if count >= 4, segments[count - 3] == "blobs", segments[count - 2] == "uploads" {
            if last.isEmpty, let repository = name(droppingLast: 3) {
                return Route(repository: repository, endpoint: .uploadStart)
            }
            if Grammar.isUploadID(last), let repository = name(droppingLast: 3) {
                return Route(repository: repository, endpoint: .upload(id: String(last)))
            }
        }
        if count >= 3, segments[count - 2] == "referrers", Grammar.isDigest(last), let repository = name(droppingLast: 2) {
            return Route(repository: repository, endpoint: .referrers(digest: String(last)))
        }
        return nil
    }
}

/// The registry's patterns for the variable parts of a route, other than names.
enum Grammar {
    /// `[\w][\w.-]{0,127}`
    static func isTag(_ text: Substring) -> Bool {
        let bytes = text.utf8
        guard let first = bytes.first, bytes.count <= 128, isWord(first) else { return false }
        return bytes.allSatisfy { isWord($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`
    static func isDigest(_ text: Substring) -> Bool {
        guard let colon = text.firstIndex(of: ":") else { return false }
        let algorithm = text[..<colon].utf8
        let encoded = text[text.index(after: colon)...].utf8
        guard !encoded.isEmpty,
            encoded.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else { return false }
        var expectComponent = true
        for byte in algorithm {
            if isLowerAlphanumeric(byte) {
                expectComponent = false
            } else if !expectComponent,
                byte == UInt8(ascii: ".") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            {
                expectComponent = true
            } else {
                return false
            }
        }
        return !expectComponent
    }

    /// `[a-zA-Z0-9-_.=]+`
    static func isUploadID(_ text: Substring) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy {
                isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
                    || $0 == UInt8(ascii: "=")
            }
    }

    private static func isWord(_ byte: UInt8) -> Bool { isAlphanumeric(byte) || byte == UInt8(ascii: "_") }
    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLowerAlphanumeric(byte) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }
}

extension RouteRejection: Error {}
