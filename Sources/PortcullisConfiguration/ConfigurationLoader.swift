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

        /// The whole file: each section by its reader, always in this order (problems are listed
        /// in the order they are found), then the configuration when the required sections are valid.
        mutating func read(_ root: Node, path: String) -> GatewayConfiguration? {
            guard
                let top = mapping(
                    root, "", allowed: [
                        "listen", "admin_listen", "public_url", "tls", "h2c", "listen_proxy_protocol", "trusted_proxies", "upstream", "upstreams", "token", "users", "issuers", "readiness",
                        "throttling", "shutdown", "timeouts", "rules", "content", "log", "retention", "ui", "state",
                    ])
            else { return nil }

            let listen = readListen(top["listen"])
            let adminListen = readAdminListen(top["admin_listen"], listen: listen)
            let publicURL = readPublicURL(top["public_url"])
            let tls = readTLS(top["tls"])
            let h2c = readH2C(top["h2c"], tls: top["tls"])
            let proxyProtocol = readProxyProtocol(top["listen_proxy_protocol"])
            let trustedProxies = readTrustedProxies(top["trusted_proxies"])
            let upstreams = readUpstreams(single: top["upstream"], list: top["upstreams"])
            let upstream = upstreams.first(where: \.isPrimary)
            let token = readToken(top["token"], upstreams: upstreams)
            let users = readUsers(top["users"])
            let throttling = readThrottling(top["throttling"])
            let issuers = readIssuers(top["issuers"])
            let readinessInterval = readReadiness(top["readiness"])
            let shutdownGracePeriod = readShutdown(top["shutdown"])
            let timeouts = readTimeouts(top["timeouts"])
            let rules = readRules(top["rules"])
            let content = readContent(top["content"])
            let log = readLog(top["log"])
            let pushTimes = readRetention(top["retention"])
            let ui = readUI(top["ui"])
            let state = readState(top["state"])
            checkOIDCIssuers(users.oidc, token: token)
            checkState(state, robots: users.robots, pushTimes: pushTimes)

            blocking = [("listen", listen == nil), ("public_url", publicURL == nil), (top["upstreams"] == nil ? "upstream" : "upstreams", upstream == nil), ("token", token == nil)]
                .filter(\.1).map(\.0)
            guard let listen, let publicURL, let upstream, let token else { return nil }
            var configuration = GatewayConfiguration(
                listen: listen, adminListen: adminListen, publicURL: publicURL, tls: tls, proxyProtocol: proxyProtocol, h2c: h2c, trustedProxies: trustedProxies,
                upstream: upstream, token: token, htpasswd: users.htpasswd, robots: users.robots,
                throttling: throttling,
                issuers: issuers, readinessInterval: readinessInterval, shutdownGracePeriod: shutdownGracePeriod,
                requestHeadTimeout: timeouts.requestHead, responseStallTimeout: timeouts.responseStall, upstreamResponseTimeout: timeouts.upstreamResponse,
                rules: rules, ruleSources: rules.map(\.description), logLevel: log.level, logFormat: log.format, auditDestination: log.audit,
                sourcePath: path)
            configuration.pushTimesPath = pushTimes
            configuration.ldap = users.ldap
            configuration.oidc = users.oidc
            configuration.upstreams = upstreams
            configuration.ui = ui
            configuration.content = content
            configuration.state = state
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
