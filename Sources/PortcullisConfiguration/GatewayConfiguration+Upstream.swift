import Policy
import Yams

extension GatewayConfiguration {
    /// How Portcullis reaches and signs for the registry.
    package struct Upstream: Sendable {
        /// The registry's base URL, e.g. `http://127.0.0.1:5001`.
        package var url: String
        /// The pinned registry version.
        package var registryVersion: RegistryVersion = .v2_8
        /// The configured key hint word: `x5c`, `kid` or `jwks`.
        package var keyHint: String = "x5c"
        /// The `kid` for `key_hint: jwks`; defaults to the key's RFC 7638 thumbprint.
        package var jwksKid: String?
        /// The registry's `auth.token.service`.
        package var service: String
        /// The registry's `auth.token.issuer`.
        package var issuer: String
        /// Lifetime of upstream tokens in seconds.
        package var tokenLifetime: Int = 300
        /// The upstream's name in metrics, logs and commands (`default` for a single `upstream:`).
        package var name = "default"
        /// Whether it serves every repository the others do not claim, and the catalog.
        package var isPrimary = false
        /// Percent of repositories routed here by a stable hash of their name (`weight`).
        package var weight = 0
        /// Repository patterns routed here (`repositories`).
        package var repositories: [String] = []
        /// Consecutive failed answers (5xx, or 401 to Portcullis's token) after which a
        /// non-primary upstream leaves the rotation (`fallback_after`).
        package var fallbackAfter = 5
        /// This upstream's own signing key (PEM private key path); `token.key` when absent.
        package var key: String?
        /// The certificate chain of ``key`` (needed for `key_hint: x5c` and a rootcertbundle).
        package var certificate: String?
    }
}

extension ConfigurationLoader.Reader {
    /// `upstream` (one registry) or `upstreams` (a list): exactly one of the two is required.
    /// Returns the upstreams read, the primary flagged; each entry that failed is left out.
    mutating func readUpstreams(single: Node?, list: Node?) -> [GatewayConfiguration.Upstream] {
        var upstreams: [GatewayConfiguration.Upstream] = []
        switch (single, list) {
        case (nil, nil):
            problem("upstream", "is required (or upstreams: a list)")
        case (.some, .some):
            problem("upstreams", "upstream and upstreams are alternatives: give one")
        case (let node?, nil):
            if var single = readUpstream(node, "upstream", inList: false) {
                single.isPrimary = true
                upstreams = [single]
            }
        case (nil, let node?):
            if let sequence = node.sequence, !sequence.isEmpty {
                for (index, item) in sequence.enumerated() {
                    if let entry = readUpstream(item, "upstreams[\(index)]", inList: true) { upstreams.append(entry) }
                }
                checkUpstreams(upstreams, count: sequence.count)
            } else {
                problem("upstreams", "must be a non-empty list of upstreams")
            }
        }
        return upstreams
    }

    /// One upstream: `upstream:` (`inList` false) or an entry of `upstreams:`, which adds
    /// `name`, `primary`, `weight` and `repositories`.
    mutating func readUpstream(_ node: Node, _ keyPath: String, inList: Bool) -> GatewayConfiguration.Upstream? {
        var allowed = ["url", "registry_version", "key_hint", "jwks_kid", "service", "issuer", "token_lifetime"]
        if inList { allowed += ["name", "primary", "weight", "repositories", "key", "certificate", "fallback_after"] }
        guard let section = mapping(node, keyPath, allowed: allowed) else { return nil }
        let url = string(section["url"], "\(keyPath).url", required: true)
        if let url, Self.parseURL(url) == nil {
            problem("\(keyPath).url", "must be an http:// or https:// URL without a path (got \"\(url)\")")
        }
        var version = RegistryVersion.v2_8
        if let text = string(section["registry_version"], "\(keyPath).registry_version") {
            if let parsed = RegistryVersion(rawValue: text) {
                version = parsed
            } else {
                problem("\(keyPath).registry_version", "must be one of 2.8, 3.0, 3.1 (got \"\(text)\")")
            }
        }
        let hint = string(section["key_hint"], "\(keyPath).key_hint") ?? "x5c"
        if !["x5c", "kid", "jwks"].contains(hint) {
            problem("\(keyPath).key_hint", "must be one of x5c, kid, jwks (got \"\(hint)\")")
        }
        if hint == "jwks" && !version.supportsJWKS {
            problem("\(keyPath).key_hint", "jwks needs registry 3.0 or later; registry 2.8 has no jwks option (use x5c or kid)")
        }
        let jwksKid = string(section["jwks_kid"], "\(keyPath).jwks_kid")
        if jwksKid != nil && hint != "jwks" {
            problem("\(keyPath).jwks_kid", "only applies with key_hint: jwks")
        }
        let service = string(section["service"], "\(keyPath).service", required: true)
        let issuer = string(section["issuer"], "\(keyPath).issuer", required: true)
        let lifetime = integer(section["token_lifetime"], "\(keyPath).token_lifetime", range: 60...86_400) ?? 300
        var name = "default"
        var isPrimary = false
        var weight = 0
        var repositories: [String] = []
        if inList {
            name = string(section["name"], "\(keyPath).name", required: true) ?? ""
            if !name.isEmpty, !name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) {
                problem("\(keyPath).name", "must be letters, digits, '-', '_' or '.' (it names the upstream in metrics and logs; got \"\(name)\")")
            }
            if let flag = section["primary"] {
                if let value = flag.bool { isPrimary = value } else { problem("\(keyPath).primary", "must be true or false") }
            }
            weight = integer(section["weight"], "\(keyPath).weight", range: 0...100) ?? 0
            repositories = stringList(section["repositories"], "\(keyPath).repositories") ?? []
            for (index, pattern) in repositories.enumerated() {
                do { _ = try Pattern(pattern) } catch let error as PolicyError {
                    problem("\(keyPath).repositories[\(index)]", error.message)
                } catch {}
            }
            if isPrimary && (weight > 0 || !repositories.isEmpty) {
                problem("\(keyPath)", "the primary takes every repository no other upstream claims: weight and repositories do not apply to it")
            }
        }
        var key: String?
        var certificate: String?
        var fallbackAfter = 5
        if inList {
            fallbackAfter = integer(section["fallback_after"], "\(keyPath).fallback_after", range: 1...1000) ?? 5
            key = path(section["key"], "\(keyPath).key")
            certificate = path(section["certificate"], "\(keyPath).certificate")
            if section["certificate"] != nil && section["key"] == nil {
                problem("\(keyPath).certificate", "goes with key: this upstream's own signing key")
            }
            if section["key"] != nil && section["certificate"] == nil && hint == "x5c" {
                problem("\(keyPath).certificate", "is required with key and key_hint: x5c (the x5c chain is built from it)")
            }
        }
        guard let url, let service, let issuer, !name.isEmpty else { return nil }
        var upstream = GatewayConfiguration.Upstream(
            url: url.hasSuffix("/") ? String(url.dropLast()) : url, registryVersion: version, keyHint: hint,
            jwksKid: jwksKid, service: service, issuer: issuer, tokenLifetime: lifetime)
        upstream.name = name
        upstream.isPrimary = isPrimary
        upstream.weight = weight
        upstream.repositories = repositories
        upstream.key = key
        upstream.certificate = certificate
        upstream.fallbackAfter = fallbackAfter
        return upstream
    }

    /// The list as a whole: unique names, one primary, shares within 100, no pattern claimed twice.
    mutating func checkUpstreams(_ upstreams: [GatewayConfiguration.Upstream], count: Int) {
        var seen: Set<String> = []
        for (index, upstream) in upstreams.enumerated() where !seen.insert(upstream.name).inserted {
            problem("upstreams[\(index)].name", "\"\(upstream.name)\" names two upstreams")
        }
        let primaries = upstreams.filter(\.isPrimary).count
        if upstreams.count == count {
            if primaries == 0 && count > 1 {
                problem("upstreams", "one upstream needs primary: true (it serves every repository the others do not claim, and the catalog)")
            } else if primaries > 1 {
                problem("upstreams", "\(primaries) upstreams say primary: true; exactly one may")
            }
        }
        let shares = upstreams.filter { !$0.isPrimary }.reduce(0) { $0 + $1.weight }
        if shares > 100 { problem("upstreams", "the weights add up to \(shares)%; at most 100% of repositories can be shared out") }
        var claimed: [String: String] = [:]
        for (index, upstream) in upstreams.enumerated() {
            for pattern in upstream.repositories {
                if let other = claimed[pattern], other != upstream.name {
                    problem("upstreams[\(index)].repositories", "\"\(pattern)\" is claimed by both \(other) and \(upstream.name)")
                }
                claimed[pattern] = upstream.name
            }
        }
    }
}
