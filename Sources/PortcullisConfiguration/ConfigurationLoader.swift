import Foundation
import Policy
import Yams

/// Reads and validates the YAML configuration file.
///
/// Every problem is collected with its key path rather than stopping at the first, unknown keys
/// are errors, and file paths are resolved against the configuration file's directory.
package enum ConfigurationLoader {
    /// Loads `path`.
    /// - Throws: ``ConfigurationErrors`` listing every problem found.
    package static func load(path: String) throws -> GatewayConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationErrors(file: path, problems: [ConfigurationProblem(keyPath: "", message: "cannot read the file")])
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }

    /// Parses configuration text read from `path`.
    package static func parse(_ text: String, path: String) throws -> GatewayConfiguration {
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var reader = Reader(base: base)
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigurationErrors(file: path, problems: [ConfigurationProblem(keyPath: "", message: "the file is empty")])
            }
            root = node
        } catch let error as ConfigurationErrors {
            throw error
        } catch {
            throw ConfigurationErrors(file: path, problems: [ConfigurationProblem(keyPath: "", message: "not valid YAML: \(error)")])
        }
        let configuration = reader.read(root, path: path)
        guard let configuration, reader.problems.isEmpty else {
            throw ConfigurationErrors(
                file: path, problems: reader.problems, partial: configuration,
                unchecked: configuration == nil
                    ? "the files the configuration names (keys, certificates, htpasswd, robots, LDAP and OIDC files) and each upstream's key_hint against its key, until "
                        + (reader.blocking.isEmpty
                            ? "the problems above are fixed"
                            : "\(reader.blocking.joined(separator: ", ")) \(reader.blocking.count == 1 ? "is" : "are") valid")
                    : nil)
        }
        return configuration
    }

    /// Walks the YAML tree, recording problems.
    struct Reader {
        var base: String
        var problems: [ConfigurationProblem] = []
        /// The sections whose problems kept ``read(_:path:)`` from building a configuration.
        var blocking: [String] = []

        mutating func problem(_ keyPath: String, _ message: String) {
            problems.append(ConfigurationProblem(keyPath: keyPath, message: message))
        }

        /// The members of a mapping, refusing keys outside `allowed`.
        mutating func mapping(_ node: Node?, _ keyPath: String, allowed: [String]) -> [String: Node]? {
            guard let node else { return nil }
            guard let mapping = node.mapping else {
                problem(keyPath, "must be a mapping")
                return nil
            }
            var result: [String: Node] = [:]
            for (key, value) in mapping {
                guard let name = key.string else {
                    problem(keyPath, "keys must be strings")
                    continue
                }
                let path = keyPath.isEmpty ? name : "\(keyPath).\(name)"
                guard allowed.contains(name) else {
                    problem(path, "unknown key (allowed here: \(allowed.joined(separator: ", ")))")
                    continue
                }
                result[name] = value
            }
            return result
        }

        mutating func string(_ node: Node?, _ keyPath: String, required: Bool = false) -> String? {
            guard let node else {
                if required { problem(keyPath, "is required") }
                return nil
            }
            guard let scalar = node.scalar else {
                problem(keyPath, "must be a string")
                return nil
            }
            if scalar.string.isEmpty && required {
                problem(keyPath, "must not be empty")
                return nil
            }
            return scalar.string
        }

        mutating func integer(_ node: Node?, _ keyPath: String, range: ClosedRange<Int>) -> Int? {
            guard let node else { return nil }
            guard let value = node.int else {
                problem(keyPath, "must be an integer")
                return nil
            }
            guard range.contains(value) else {
                problem(keyPath, "must be between \(range.lowerBound) and \(range.upperBound) (got \(value))")
                return nil
            }
            return value
        }

        mutating func path(_ node: Node?, _ keyPath: String, required: Bool = false) -> String? {
            guard let value = string(node, keyPath, required: required) else { return nil }
            let resolved = value.hasPrefix("/") ? value : URL(fileURLWithPath: base).appendingPathComponent(value).path
            if !FileManager.default.isReadableFile(atPath: resolved) {
                problem(keyPath, "file \(resolved) does not exist or is not readable")
            }
            return resolved
        }

        mutating func read(_ root: Node, path: String) -> GatewayConfiguration? {
            guard
                let top = mapping(
                    root, "", allowed: [
                        "listen", "admin_listen", "public_url", "tls", "h2c", "listen_proxy_protocol", "trusted_proxies", "upstream", "upstreams", "token", "users", "issuers", "readiness",
                        "throttling", "shutdown", "timeouts", "rules", "content", "log", "retention", "ui",
                    ])
            else { return nil }

            var listen: GatewayConfiguration.ListenAddress?
            if let text = string(top["listen"], "listen", required: true) {
                listen = Self.parseListen(text)
                if listen == nil { problem("listen", "must be host:port with a port from 1 to 65535 (got \"\(text)\")") }
            }
            var adminListen: GatewayConfiguration.ListenAddress?
            if let text = string(top["admin_listen"], "admin_listen") {
                adminListen = Self.parseListen(text)
                if adminListen == nil { problem("admin_listen", "must be host:port with a port from 1 to 65535 (got \"\(text)\")") }
                if let adminListen, let listen, adminListen == listen { problem("admin_listen", "must differ from listen (\(listen))") }
            }
            var publicURL: GatewayConfiguration.PublicURL?
            if let text = string(top["public_url"], "public_url", required: true) {
                publicURL = Self.parseURL(text)
                if publicURL == nil { problem("public_url", "must be an http:// or https:// URL without a path (got \"\(text)\")") }
            }

            var tls: GatewayConfiguration.TLS?
            if let section = mapping(top["tls"], "tls", allowed: ["certificate", "key"]) {
                let certificate = self.path(section["certificate"], "tls.certificate", required: true)
                let key = self.path(section["key"], "tls.key", required: true)
                if let certificate, let key { tls = GatewayConfiguration.TLS(certificate: certificate, key: key) }
            }
            var h2c = false
            if let node = top["h2c"] {
                if let value = node.bool { h2c = value } else { problem("h2c", "must be true or false") }
                if h2c && top["tls"] != nil { problem("h2c", "applies to a plain listener only; with tls, HTTP/2 is offered by ALPN") }
            }
            var proxyProtocol = false
            if let node = top["listen_proxy_protocol"] {
                if let value = node.bool { proxyProtocol = value } else { problem("listen_proxy_protocol", "must be true or false") }
            }
            var trustedProxies: [String] = []
            for (index, range) in (stringList(top["trusted_proxies"], "trusted_proxies") ?? []).enumerated() {
                if AddressRange(range) == nil {
                    problem("trusted_proxies[\(index)]", "must be an IP address or CIDR range such as 10.0.0.0/8 (got \"\(range)\")")
                } else {
                    trustedProxies.append(range)
                }
            }

            var upstreams: [GatewayConfiguration.Upstream] = []
            switch (top["upstream"], top["upstreams"]) {
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
            let upstream = upstreams.first(where: \.isPrimary)

            var token: GatewayConfiguration.Token?
            if top["token"] == nil { problem("token", "is required") }
            if let section = mapping(
                top["token"], "token",
                allowed: [
                    "service", "issuer", "key", "certificate", "lifetime", "refresh_lifetime", "realm", "next_key", "next_certificate", "jwks_path",
                    "grant",
                ])
            {
                let service = string(section["service"], "token.service", required: true)
                let issuer = string(section["issuer"], "token.issuer", required: true)
                let key = self.path(section["key"], "token.key", required: true)
                let certificate = self.path(section["certificate"], "token.certificate")
                let lifetime = integer(section["lifetime"], "token.lifetime", range: 30...86_400) ?? 300
                let realm = string(section["realm"], "token.realm")
                let refreshLifetime = integer(section["refresh_lifetime"], "token.refresh_lifetime", range: 60...(365 * 86_400)) ?? 30 * 86_400
                let nextKey = self.path(section["next_key"], "token.next_key")
                let nextCertificate = self.path(section["next_certificate"], "token.next_certificate")
                if (nextKey == nil) != (nextCertificate == nil) && (section["next_key"] != nil) != (section["next_certificate"] != nil) {
                    problem("token.next_key", "next_key and next_certificate go together")
                }
                let jwksPath = string(section["jwks_path"], "token.jwks_path") ?? "/jwks"
                let reserved = ["/token", "/healthz", "/readyz", "/metrics"]
                if !jwksPath.hasPrefix("/") || jwksPath.contains("?") || jwksPath.contains("#") || reserved.contains(jwksPath)
                    || jwksPath == "/v2" || jwksPath.hasPrefix("/v2/")
                {
                    problem("token.jwks_path", "must be a path starting with / outside /v2/ and other than \(reserved.joined(separator: ", ")) (got \"\(jwksPath)\")")
                }
                if let realm, Self.parseURL(realm, allowPath: true) == nil {
                    problem("token.realm", "must be an http:// or https:// URL (got \"\(realm)\")")
                }
                if upstreams.contains(where: { $0.keyHint == "x5c" && $0.key == nil }) && certificate == nil && section["certificate"] == nil {
                    problem("token.certificate", "is required with upstream.key_hint: x5c (the x5c chain is built from it)")
                }
                var grant = TokenGrantMode.requested
                if let text = string(section["grant"], "token.grant") {
                    if let mode = TokenGrantMode(rawValue: text) {
                        grant = mode
                    } else {
                        problem("token.grant", "must be requested or repository (got \"\(text)\")")
                    }
                }
                if let service, let issuer, let key {
                    token = GatewayConfiguration.Token(
                        service: service, issuer: issuer, key: key, certificate: certificate, lifetime: lifetime, realm: realm,
                        refreshLifetime: refreshLifetime, nextKey: nextKey, nextCertificate: nextCertificate, jwksPath: jwksPath, grant: grant)
                }
            }

            var htpasswd: String?
            var robots: String?
            var ldap: LDAPConfiguration?
            var oidc: [OIDCConfiguration] = []
            if let section = mapping(top["users"], "users", allowed: ["htpasswd", "robots", "ldap", "oidc"]) {
                if let node = section["ldap"] { ldap = readLDAP(node, "users.ldap") }
                if let node = section["oidc"] {
                    if let sequence = node.sequence {
                        for (index, item) in sequence.enumerated() {
                            if let issuer = readOIDC(item, "users.oidc[\(index)]") {
                                if oidc.contains(where: { $0.issuer == issuer.issuer }) {
                                    problem("users.oidc[\(index)].issuer", "\"\(issuer.issuer)\" is listed twice")
                                }
                                oidc.append(issuer)
                            }
                        }
                    } else {
                        problem("users.oidc", "must be a list of issuers")
                    }
                }
                htpasswd = self.path(section["htpasswd"], "users.htpasswd")
                if let value = string(section["robots"], "users.robots") {
                    let resolved = value.hasPrefix("/") ? value : URL(fileURLWithPath: base).appendingPathComponent(value).path
                    let directory = URL(fileURLWithPath: resolved).deletingLastPathComponent().path
                    var isDirectory: ObjCBool = false
                    if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) || !isDirectory.boolValue {
                        problem("users.robots", "directory \(directory) does not exist")
                    }
                    robots = resolved
                }
            }

            var throttling = GatewayConfiguration.Throttling()
            if let section = mapping(
                top["throttling"], "throttling", allowed: ["max_failures", "max_failures_per_address", "window", "cooldown"])
            {
                throttling.maxFailures = integer(section["max_failures"], "throttling.max_failures", range: 1...10_000) ?? throttling.maxFailures
                throttling.maxFailuresPerAddress =
                    integer(section["max_failures_per_address"], "throttling.max_failures_per_address", range: 1...1_000_000)
                    ?? throttling.maxFailuresPerAddress
                throttling.window = integer(section["window"], "throttling.window", range: 1...86_400) ?? throttling.window
                throttling.cooldown = integer(section["cooldown"], "throttling.cooldown", range: 1...86_400) ?? throttling.cooldown
            }

            var issuers: [GatewayConfiguration.ExternalIssuer] = []
            if let node = top["issuers"] {
                if let sequence = node.sequence {
                    for (index, item) in sequence.enumerated() {
                        if let issuer = readIssuer(item, "issuers[\(index)]") { issuers.append(issuer) }
                    }
                } else {
                    problem("issuers", "must be a list of issuers")
                }
            }

            var readinessInterval = 10
            if let section = mapping(top["readiness"], "readiness", allowed: ["interval"]) {
                readinessInterval = integer(section["interval"], "readiness.interval", range: 1...3600) ?? 10
            }

            var shutdownGracePeriod = 30
            if let section = mapping(top["shutdown"], "shutdown", allowed: ["grace_period"]) {
                shutdownGracePeriod = integer(section["grace_period"], "shutdown.grace_period", range: 0...86_400) ?? 30
            }

            var requestHeadTimeout = 60
            var responseStallTimeout = 60
            var upstreamResponseTimeout = 300
            if let section = mapping(top["timeouts"], "timeouts", allowed: ["request_head", "response_stall", "upstream_response"]) {
                requestHeadTimeout = integer(section["request_head"], "timeouts.request_head", range: 1...3600) ?? 60
                responseStallTimeout = integer(section["response_stall"], "timeouts.response_stall", range: 1...3600) ?? 60
                upstreamResponseTimeout = integer(section["upstream_response"], "timeouts.upstream_response", range: 1...3600) ?? 300
            }

            var rules: [Rule] = []
            var ruleSources: [String] = []
            if let node = top["rules"] {
                if let sequence = node.sequence {
                    for (index, item) in sequence.enumerated() {
                        if let rule = readRule(item, "rules[\(index)]") {
                            rules.append(rule)
                            ruleSources.append(rule.description)
                        }
                    }
                } else {
                    problem("rules", "must be a list of rules")
                }
            } else {
                problem("rules", "is required (without rules every request is denied)")
            }

            let content = readContent(top["content"])

            var level = "info"
            var format = "logfmt"
            var audit = "stdout"
            if let section = mapping(top["log"], "log", allowed: ["level", "format", "audit"]) {
                if let text = string(section["format"], "log.format") {
                    if ["logfmt", "json"].contains(text) { format = text } else { problem("log.format", "must be logfmt or json (got \"\(text)\")") }
                }
                if let text = string(section["audit"], "log.audit") {
                    if ["stdout", "stderr", "off"].contains(text) {
                        audit = text
                    } else {
                        audit = fileToWrite(text, "log.audit")
                    }
                }
                if let text = string(section["level"], "log.level") {
                    if ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(text) {
                        level = text
                    } else {
                        problem("log.level", "must be one of trace, debug, info, notice, warning, error, critical (got \"\(text)\")")
                    }
                }
            }

            var pushTimes: String?
            if let section = mapping(top["retention"], "retention", allowed: ["push_times"]),
                let text = string(section["push_times"], "retention.push_times")
            {
                pushTimes = fileToWrite(text, "retention.push_times")
            }

            var ui = GatewayConfiguration.UI()
            if let section = mapping(top["ui"], "ui", allowed: ["enabled", "session_lifetime"]) {
                if let flag = section["enabled"] {
                    if let value = flag.bool { ui.enabled = value } else { problem("ui.enabled", "must be true or false") }
                }
                ui.sessionLifetime = integer(section["session_lifetime"], "ui.session_lifetime", range: 60...(30 * 86_400)) ?? 8 * 3600
            }
            if let token, let clash = oidc.first(where: { $0.issuer == token.issuer }) {
                problem("users.oidc", "issuer \"\(clash.issuer)\" is Portcullis's own token.issuer")
            }

            blocking = [("listen", listen == nil), ("public_url", publicURL == nil), (top["upstreams"] == nil ? "upstream" : "upstreams", upstream == nil), ("token", token == nil)]
                .filter(\.1).map(\.0)
            guard let listen, let publicURL, let upstream, let token else { return nil }
            var configuration = GatewayConfiguration(
                listen: listen, adminListen: adminListen, publicURL: publicURL, tls: tls, proxyProtocol: proxyProtocol, h2c: h2c, trustedProxies: trustedProxies,
                upstream: upstream, token: token, htpasswd: htpasswd, robots: robots,
                throttling: throttling,
                issuers: issuers, readinessInterval: readinessInterval, shutdownGracePeriod: shutdownGracePeriod,
                requestHeadTimeout: requestHeadTimeout, responseStallTimeout: responseStallTimeout, upstreamResponseTimeout: upstreamResponseTimeout, rules: rules, ruleSources: ruleSources, logLevel: level, logFormat: format, auditDestination: audit,
                sourcePath: path)
            configuration.pushTimesPath = pushTimes
            configuration.ldap = ldap
            configuration.oidc = oidc
            configuration.upstreams = upstreams
            configuration.ui = ui
            configuration.content = content
            return configuration
        }

        /// `text` resolved against the configuration's directory, as a file Portcullis will create
        /// or append to: its directory must exist.
        mutating func fileToWrite(_ text: String, _ keyPath: String) -> String {
            let resolved = text.hasPrefix("/") ? text : URL(fileURLWithPath: base).appendingPathComponent(text).path
            let directory = URL(fileURLWithPath: resolved).deletingLastPathComponent().path
            if !FileManager.default.fileExists(atPath: directory) { problem(keyPath, "directory \(directory) does not exist") }
            return resolved
        }

        mutating func stringList(_ node: Node?, _ keyPath: String) -> [String]? {
            guard let node else { return nil }
            if let scalar = node.scalar { return [scalar.string] }
            guard let sequence = node.sequence else {
                problem(keyPath, "must be a list of strings")
                return nil
            }
            var result: [String] = []
            for item in sequence {
                guard let text = item.string else {
                    problem(keyPath, "must be a list of strings")
                    return nil
                }
                result.append(text)
            }
            return result
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

        mutating func readOIDC(_ node: Node, _ keyPath: String) -> OIDCConfiguration? {
            guard
                let section = mapping(
                    node, keyPath, allowed: ["issuer", "audiences", "jwks", "jwks_url", "discovery", "account", "labels", "require", "username", "leeway"])
            else { return nil }
            let issuer = string(section["issuer"], "\(keyPath).issuer", required: true)
            if let issuer, !Self.isAcceptableIssuerURL(issuer) {
                problem("\(keyPath).issuer", "must be an https:// URL (http:// only on a loopback host) (got \"\(issuer)\")")
            }
            let audiences = stringList(section["audiences"], "\(keyPath).audiences") ?? []
            if audiences.isEmpty { problem("\(keyPath).audiences", "is required: the aud values this issuer's tokens carry for Portcullis") }
            let jwks = path(section["jwks"], "\(keyPath).jwks")
            let jwksURL = string(section["jwks_url"], "\(keyPath).jwks_url")
            if let jwksURL, !Self.isAcceptableIssuerURL(jwksURL) {
                problem("\(keyPath).jwks_url", "must be an https:// URL (http:// only on a loopback host) (got \"\(jwksURL)\")")
            }
            var discovery = false
            if let flag = section["discovery"] {
                if let value = flag.bool { discovery = value } else { problem("\(keyPath).discovery", "must be true or false") }
            }
            var keys: OIDCConfiguration.Keys?
            switch (jwks, jwksURL, discovery) {
            case (let file?, nil, false): keys = .file(file)
            case (nil, let url?, false): keys = .url(url)
            case (nil, nil, true): keys = .discovery
            default:
                if section["jwks"] == nil || jwks != nil {
                    problem(keyPath, "needs exactly one of jwks (a file), jwks_url, or discovery: true")
                }
            }
            var account: ClaimTemplate?
            do {
                account = try ClaimTemplate(string(section["account"], "\(keyPath).account") ?? "${claims:sub}")
            } catch let error as PolicyError {
                problem("\(keyPath).account", error.message)
            } catch {}
            if let account, account.claimNames.isEmpty {
                problem("\(keyPath).account", "must use at least one ${claims:NAME} (got \"\(account)\"), or every job would be one account")
            }
            var labels: [String: ClaimTemplate] = [:]
            if let node = section["labels"] {
                if let entries = node.mapping {
                    for (key, value) in entries {
                        guard let name = key.string, let text = value.string else {
                            problem("\(keyPath).labels", "must map label names to claim templates")
                            continue
                        }
                        do {
                            labels[name] = try ClaimTemplate(text)
                        } catch let error as PolicyError {
                            problem("\(keyPath).labels.\(name)", error.message)
                        } catch {}
                    }
                } else {
                    problem("\(keyPath).labels", "must be a mapping of label name to claim template")
                }
            }
            var require: [String: String] = [:]
            if let node = section["require"] {
                if let entries = node.mapping {
                    for (key, value) in entries {
                        guard let name = key.string, let text = value.string else {
                            problem("\(keyPath).require", "must map claim names to required values")
                            continue
                        }
                        require[name] = text
                    }
                } else {
                    problem("\(keyPath).require", "must be a mapping of claim name to required value")
                }
            }
            let username = string(section["username"], "\(keyPath).username")
            let leeway = integer(section["leeway"], "\(keyPath).leeway", range: 0...600) ?? 60
            guard let issuer, let keys, let account else { return nil }
            return OIDCConfiguration(
                issuer: issuer, audiences: audiences, keys: keys, account: account, labels: labels, require: require, username: username, leeway: leeway)
        }

        /// An https URL, or an http one on a loopback host (tests, a sidecar issuer).
        static func isAcceptableIssuerURL(_ text: String) -> Bool {
            guard let url = parseURL(text, allowPath: true) else { return false }
            if url.scheme == "https" { return true }
            let host = url.authority.split(separator: ":").first.map(String.init) ?? ""
            return url.scheme == "http" && ["127.0.0.1", "localhost", "[::1]"].contains(host) || text.hasPrefix("http://[::1]")
        }

        mutating func readLDAP(_ node: Node, _ keyPath: String) -> LDAPConfiguration? {
            guard
                let section = mapping(
                    node, keyPath,
                    allowed: ["url", "start_tls", "ca", "bind_dn", "search", "groups", "account_attribute", "cache_lifetime", "timeout"])
            else { return nil }
            let url = string(section["url"], "\(keyPath).url", required: true)
            if let url, !(url.hasPrefix("ldap://") || url.hasPrefix("ldaps://")) || url.contains(" ") {
                problem("\(keyPath).url", "must be one ldap:// or ldaps:// URL (got \"\(url)\")")
            }
            var startTLS = false
            if let flag = section["start_tls"] {
                if let value = flag.bool { startTLS = value } else { problem("\(keyPath).start_tls", "must be true or false") }
            }
            if startTLS, let url, url.hasPrefix("ldaps://") {
                problem("\(keyPath).start_tls", "applies to ldap:// only (ldaps:// is TLS from the start)")
            }
            let ca = path(section["ca"], "\(keyPath).ca")
            var lookup: LDAPConfiguration.UserLookup?
            let bindDN = string(section["bind_dn"], "\(keyPath).bind_dn")
            if let bindDN {
                if !bindDN.contains("${username}") {
                    problem("\(keyPath).bind_dn", "must contain ${username} (got \"\(bindDN)\")")
                }
                lookup = .template(bindDN)
            }
            if let search = mapping(section["search"], "\(keyPath).search", allowed: ["base", "filter", "bind_dn", "bind_password_file"]) {
                let base = string(search["base"], "\(keyPath).search.base", required: true)
                let filter = string(search["filter"], "\(keyPath).search.filter", required: true)
                let serviceDN = string(search["bind_dn"], "\(keyPath).search.bind_dn", required: true)
                let passwordFile = path(search["bind_password_file"], "\(keyPath).search.bind_password_file", required: true)
                if let filter, !filter.contains("${username}") || !filter.hasPrefix("(") {
                    problem("\(keyPath).search.filter", "must be a parenthesised LDAP filter with ${username} (got \"\(filter)\")")
                }
                if bindDN != nil { problem("\(keyPath).search", "bind_dn and search are alternatives: give one") }
                if let base, let filter, let serviceDN, let passwordFile {
                    lookup = .search(base: base, filter: filter, bindDN: serviceDN, bindPasswordFile: passwordFile)
                }
            } else if bindDN == nil && section["search"] == nil {
                problem(keyPath, "needs bind_dn (a DN template with ${username}) or search (base, filter, bind_dn, bind_password_file)")
            }
            var groups: LDAPConfiguration.Groups?
            if let section = mapping(section["groups"], "\(keyPath).groups", allowed: ["base", "filter", "attribute", "label", "member_of"]) {
                let label = string(section["label"], "\(keyPath).groups.label") ?? "group"
                var memberOf = false
                if let flag = section["member_of"] {
                    if let value = flag.bool { memberOf = value } else { problem("\(keyPath).groups.member_of", "must be true or false") }
                }
                if memberOf {
                    if section["base"] != nil || section["filter"] != nil {
                        problem("\(keyPath).groups", "member_of: true takes the groups from the account entry; base and filter do not apply")
                    }
                    groups = .memberOf(label: label)
                } else {
                    let base = string(section["base"], "\(keyPath).groups.base", required: true)
                    let filter = string(section["filter"], "\(keyPath).groups.filter", required: true)
                    let attribute = string(section["attribute"], "\(keyPath).groups.attribute") ?? "cn"
                    if let filter, !filter.hasPrefix("(") {
                        problem("\(keyPath).groups.filter", "must be a parenthesised LDAP filter, e.g. (member=${dn}) (got \"\(filter)\")")
                    }
                    if let base, let filter { groups = .search(base: base, filter: filter, attribute: attribute, label: label) }
                }
            }
            let accountAttribute = string(section["account_attribute"], "\(keyPath).account_attribute")
            let cacheLifetime = integer(section["cache_lifetime"], "\(keyPath).cache_lifetime", range: 1...3600) ?? 60
            let timeout = integer(section["timeout"], "\(keyPath).timeout", range: 1...60) ?? 5
            guard let url, let lookup else { return nil }
            return LDAPConfiguration(
                url: url, startTLS: startTLS, ca: ca, userLookup: lookup, groups: groups, accountAttribute: accountAttribute,
                cacheLifetime: cacheLifetime, timeout: timeout)
        }

        mutating func readIssuer(_ node: Node, _ keyPath: String) -> GatewayConfiguration.ExternalIssuer? {
            guard
                let section = mapping(
                    node, keyPath, allowed: ["issuer", "audiences", "certificates", "public_keys", "jwks", "trust_access_claim"])
            else { return nil }
            let issuer = string(section["issuer"], "\(keyPath).issuer", required: true)
            let audiences = stringList(section["audiences"], "\(keyPath).audiences") ?? []
            if audiences.isEmpty { problem("\(keyPath).audiences", "is required: the aud values this issuer's tokens carry") }
            let certificates = (stringList(section["certificates"], "\(keyPath).certificates") ?? []).enumerated().compactMap {
                path(Node($0.element), "\(keyPath).certificates[\($0.offset)]")
            }
            let publicKeys = (stringList(section["public_keys"], "\(keyPath).public_keys") ?? []).enumerated().compactMap {
                path(Node($0.element), "\(keyPath).public_keys[\($0.offset)]")
            }
            let jwks = path(section["jwks"], "\(keyPath).jwks")
            if certificates.isEmpty && publicKeys.isEmpty && jwks == nil {
                problem(keyPath, "needs trust material: certificates, public_keys and/or jwks")
            }
            var trust = false
            if let flag = section["trust_access_claim"] {
                if let value = flag.bool { trust = value } else { problem("\(keyPath).trust_access_claim", "must be true or false") }
            }
            guard let issuer else { return nil }
            return GatewayConfiguration.ExternalIssuer(
                issuer: issuer, audiences: audiences, certificates: certificates, publicKeys: publicKeys, jwks: jwks,
                trustAccessClaim: trust)
        }

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

        static func parseListen(_ text: String) -> GatewayConfiguration.ListenAddress? {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            var host = String(text[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
            return GatewayConfiguration.ListenAddress(host: host, port: port)
        }

        static func parseURL(_ text: String, allowPath: Bool = false) -> GatewayConfiguration.PublicURL? {
            guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
                scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty,
                components.query == nil
            else { return nil }
            if !allowPath && !(components.path.isEmpty || components.path == "/") { return nil }
            let authority = components.port.map { "\(host):\($0)" } ?? host
            return GatewayConfiguration.PublicURL(scheme: scheme, authority: authority)
        }
    }
}
