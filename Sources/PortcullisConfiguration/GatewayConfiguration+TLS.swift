import Yams

extension GatewayConfiguration {
    /// TLS termination: certificate chain and key files.
    package struct TLS: Sendable {
        package var certificate: String
        package var key: String
    }
}

/// The listener's connection settings: `tls`, `h2c`, `listen_proxy_protocol`, `trusted_proxies`.
extension ConfigurationLoader.Reader {
    /// `tls` (optional): `certificate` and `key`, both required files; `nil` without the section
    /// or when either is missing.
    mutating func readTLS(_ node: Node?) -> GatewayConfiguration.TLS? {
        guard let section = mapping(node, "tls", allowed: ["certificate", "key"]) else { return nil }
        let certificate = self.path(section["certificate"], "tls.certificate", required: true)
        let key = self.path(section["key"], "tls.key", required: true)
        guard let certificate, let key else { return nil }
        return GatewayConfiguration.TLS(certificate: certificate, key: key)
    }

    /// `h2c` (default false): HTTP/2 with prior knowledge on a plain listener, refused beside
    /// a `tls` section (`tls`, its node, present or not).
    mutating func readH2C(_ node: Node?, tls: Node?) -> Bool {
        var h2c = false
        if let node {
            if let value = node.bool { h2c = value } else { problem("h2c", "must be true or false") }
            if h2c && tls != nil { problem("h2c", "applies to a plain listener only; with tls, HTTP/2 is offered by ALPN") }
        }
        return h2c
    }

    /// `listen_proxy_protocol` (default false): every connection starts with a PROXY header.
    mutating func readProxyProtocol(_ node: Node?) -> Bool {
        var proxyProtocol = false
        if let node {
            if let value = node.bool { proxyProtocol = value } else { problem("listen_proxy_protocol", "must be true or false") }
        }
        return proxyProtocol
    }

    /// `trusted_proxies` (default none): the addresses and CIDR ranges that parse, each one that
    /// does not reported with its index.
    mutating func readTrustedProxies(_ node: Node?) -> [String] {
        var trustedProxies: [String] = []
        for (index, range) in (stringList(node, "trusted_proxies") ?? []).enumerated() {
            if AddressRange(range) == nil {
                problem("trusted_proxies[\(index)]", "must be an IP address or CIDR range such as 10.0.0.0/8 (got \"\(range)\")")
            } else {
                trustedProxies.append(range)
            }
        }
        return trustedProxies
    }
}
