import NIOSSL

/// Where the registry is, as the forwarding core connects to it: parsed once from `upstream.url`.
struct UpstreamEndpoint: Sendable {
    /// The host to connect to (and to name in SNI and `Host`).
    let host: String
    /// The TCP port.
    let port: Int
    /// The `Host` header value: the authority as written in the URL.
    let authority: String
    /// The TLS context for an `https://` registry, `nil` for plain HTTP.
    let tlsContext: NIOSSLContext?

    /// Parses an `http://host[:port]` or `https://host[:port]` URL (validated by the configuration loader).
    /// - Throws: when the URL has another scheme, or a TLS context cannot be made.
    init(url: String) throws {
        let secure: Bool
        let rest: Substring
        if url.hasPrefix("https://") {
            secure = true
            rest = url.dropFirst("https://".count)
        } else if url.hasPrefix("http://") {
            secure = false
            rest = url.dropFirst("http://".count)
        } else {
            throw UpstreamEndpointError(url: url)
        }
        let authority = String(rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        var host = authority
        var port = secure ? 443 : 80
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":"), let value = Int(after.dropFirst()) { port = value }
        } else if let colon = authority.lastIndex(of: ":"), let value = Int(authority[authority.index(after: colon)...]) {
            host = String(authority[..<colon])
            port = value
        }
        guard !host.isEmpty else { throw UpstreamEndpointError(url: url) }
        self.host = host
        self.port = port
        self.authority = authority
        self.tlsContext = secure ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
    }
}

/// `upstream.url` is not a URL the forwarding core can connect to.
struct UpstreamEndpointError: Error, CustomStringConvertible {
    let url: String
    var description: String { "cannot connect to \(url): expected http://host[:port] or https://host[:port]" }
}
