import Policy
import Yams

/// One entry of `users.oidc`: an OpenID Connect issuer whose identity tokens log in CI jobs.
package struct OIDCConfiguration: Sendable {
    /// Where the issuer's signing keys come from.
    package enum Keys: Sendable, Equatable {
        /// `jwks`: a local JWKS file (offline clusters).
        case file(String)
        /// `jwks_url`: fetched, cached, fetched again for an unknown `kid` (rate-limited).
        case url(String)
        /// `discovery: true`: `jwks_uri` from `<issuer>/.well-known/openid-configuration`.
        case discovery
    }

    package var issuer: String
    package var audiences: [String]
    package var keys: Keys
    /// `account`, e.g. `ci:${claims:project_path}` (default `${claims:sub}`).
    package var account: ClaimTemplate
    /// `labels`: label name → claim template.
    package var labels: [String: ClaimTemplate]
    /// `require`: claim → the only value accepted.
    package var require: [String: String]
    /// `username`: the Basic user name such logins must use; any when absent.
    package var username: String?
    /// `leeway`: clock slack in seconds.
    package var leeway: Int
}

extension ConfigurationLoader.Reader {
    /// `users.oidc`: a list of issuers, each named once; the entries that were valid, in order.
    mutating func readOIDCIssuers(_ node: Node, _ keyPath: String) -> [OIDCConfiguration] {
        var oidc: [OIDCConfiguration] = []
        if let sequence = node.sequence {
            for (index, item) in sequence.enumerated() {
                if let issuer = readOIDC(item, "\(keyPath)[\(index)]") {
                    if oidc.contains(where: { $0.issuer == issuer.issuer }) {
                        problem("\(keyPath)[\(index)].issuer", "\"\(issuer.issuer)\" is listed twice")
                    }
                    oidc.append(issuer)
                }
            }
        } else {
            problem(keyPath, "must be a list of issuers")
        }
        return oidc
    }

    /// One entry of `users.oidc`: `nil` when it is not a mapping, lacks `issuer`, names no single
    /// key source, or has an unusable `account` template.
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

    /// No OIDC issuer may be Portcullis's own `token.issuer` (read after every section, once
    /// both are known; `token` is `nil` when it was invalid).
    mutating func checkOIDCIssuers(_ oidc: [OIDCConfiguration], token: GatewayConfiguration.Token?) {
        if let token, let clash = oidc.first(where: { $0.issuer == token.issuer }) {
            problem("users.oidc", "issuer \"\(clash.issuer)\" is Portcullis's own token.issuer")
        }
    }
}
