import Yams

extension GatewayConfiguration {
    /// A `host:port` to listen on.
    package struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
        package var host: String
        package var port: Int
        package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// The public URL clients use: realm and forwarded headers derive from it.
    package struct PublicURL: Sendable, Equatable, CustomStringConvertible {
        package var scheme: String
        /// Host with port when one was given, as it goes into `X-Forwarded-Host`.
        package var authority: String
        package var description: String { "\(scheme)://\(authority)" }
    }
}

extension ConfigurationLoader.Reader {
    /// `listen` (required): the `host:port` the gateway serves on; `nil` when missing or invalid.
    mutating func readListen(_ node: Node?) -> GatewayConfiguration.ListenAddress? {
        guard let text = string(node, "listen", required: true) else { return nil }
        let listen = Self.parseListen(text)
        if listen == nil { problem("listen", "must be host:port with a port from 1 to 65535 (got \"\(text)\")") }
        return listen
    }

    /// `admin_listen` (optional): the plain listener for `/healthz`, `/readyz` and `/metrics`,
    /// which must differ from `listen` (already read, `nil` when it was invalid).
    mutating func readAdminListen(_ node: Node?, listen: GatewayConfiguration.ListenAddress?) -> GatewayConfiguration.ListenAddress? {
        guard let text = string(node, "admin_listen") else { return nil }
        let adminListen = Self.parseListen(text)
        if adminListen == nil { problem("admin_listen", "must be host:port with a port from 1 to 65535 (got \"\(text)\")") }
        if let adminListen, let listen, adminListen == listen { problem("admin_listen", "must differ from listen (\(listen))") }
        return adminListen
    }

    /// `public_url` (required): an http or https URL without a path; `nil` when missing or invalid.
    mutating func readPublicURL(_ node: Node?) -> GatewayConfiguration.PublicURL? {
        guard let text = string(node, "public_url", required: true) else { return nil }
        let publicURL = Self.parseURL(text)
        if publicURL == nil { problem("public_url", "must be an http:// or https:// URL without a path (got \"\(text)\")") }
        return publicURL
    }
}
