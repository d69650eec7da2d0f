import NIOSSL
import PortcullisConfiguration

/// The listener's connection settings: `tls` and `trusted_proxies`.
extension GatewayState {
    /// The TLS context new connections use (HTTP/2 and HTTP/1.1 by ALPN, TLS 1.2 or later);
    /// `nil` without `tls`, or with a problem when its files cannot be used.
    static func tlsContext(_ tls: GatewayConfiguration.TLS?, _ problems: inout StateProblems) -> NIOSSLContext? {
        var tlsContext: NIOSSLContext?
        if let tls {
            do {
                var settings = TLSConfiguration.makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificate).map { .certificate($0) },
                    privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.key, format: .pem)))
                settings.applicationProtocols = ["h2", "http/1.1"]
                settings.minimumTLSVersion = .tlsv12
                tlsContext = try NIOSSLContext(configuration: settings)
            } catch {
                problems.problem("tls", "cannot use \(tls.certificate) and \(tls.key): \(error)")
            }
        }
        return tlsContext
    }

    /// `trusted_proxies` as ranges (the reader has refused those that do not parse).
    static func trustedProxies(_ ranges: [String]) -> [AddressRange] {
        ranges.compactMap(AddressRange.init)
    }
}
