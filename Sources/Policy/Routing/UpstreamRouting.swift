import Crypto

/// Which registry a repository's requests go to when Portcullis fronts several (`upstreams:`),
/// so that a repository lives on one registry at a time: its upload session, PATCHes and final
/// PUT, and a manifest with its blobs, always reach the same one.
///
/// An upstream claims repositories by pattern (`repositories: ["team-a/**"]`) and/or by share:
/// `weight: 10` takes the repositories whose stable hash falls in its 10 of 100 buckets. Patterns
/// are tried first, in upstream order; then shares; the rest, and every repository of an
/// upstream that is not available, goes to the primary.
public struct UpstreamRouting: Sendable {
    /// One upstream's claim.
    public struct Claim: Sendable {
        public var name: String
        public var repositories: [Pattern]
        /// Percent of repositories (0…100), chosen by a stable hash of the name.
        public var weight: Int

        public init(name: String, repositories: [Pattern] = [], weight: Int = 0) {
            self.name = name
            self.repositories = repositories
            self.weight = weight
        }
    }

    /// The upstream that serves everything not claimed, and the catalog.
    public var primary: String
    /// The other upstreams, in configuration order.
    public var claims: [Claim]

    public init(primary: String, claims: [Claim]) {
        self.primary = primary
        self.claims = claims.filter { $0.name != primary }
    }

    /// The upstream for `repository`, given which upstreams are available now.
    public func upstream(for repository: String, available: (String) -> Bool = { _ in true }) -> String {
        for claim in claims where claim.repositories.contains(where: { $0.matches(repository) }) {
            return available(claim.name) ? claim.name : primary
        }
        let bucket = Self.bucket(repository)
        var start = 0
        for claim in claims where claim.weight > 0 {
            if bucket < start + claim.weight { return available(claim.name) ? claim.name : primary }
            start += claim.weight
        }
        return primary
    }

    /// A repository's bucket, 0…99: the first 8 bytes of SHA-256 of its name, modulo 100. The same
    /// on every replica and every restart, so replicas agree where a repository lives.
    public static func bucket(_ repository: String) -> Int {
        let digest = SHA256.hash(data: Array(repository.utf8))
        var value: UInt64 = 0
        for byte in digest.prefix(8) { value = value << 8 | UInt64(byte) }
        return Int(value % 100)
    }
}
