import Foundation
import NIOHTTP1

/// The header rules of the proxy, in both directions.
enum ForwardingHeaders {
    /// Hop-by-hop headers (RFC 9110 §7.6.1) plus the legacy ones proxies still see.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade",
    ]

    /// Headers Portcullis sets itself on the upstream request; client values are dropped.
    static let replacedUpstream: Set<String> = [
        "host", "content-length", "authorization", "forwarded", "x-forwarded-for", "x-forwarded-host",
        "x-forwarded-proto", "x-forwarded-port", "x-forwarded-prefix", "x-real-ip", "expect",
    ]

    /// The client's headers as they go to the registry: hop-by-hop and replaced headers
    /// removed, everything else (repeated `Accept` included) kept in order and as sent.
    static func upstreamRequestHeaders(
        from client: HTTPHeaders, token: String, publicScheme: String, publicAuthority: String, clientAddress: String
    ) -> HTTPHeaders {
        let named = connectionNamed(client)
        var headers = HTTPHeaders()
        headers.reserveCapacity(client.count + 5)
        for (name, value) in client {
            if isDropped(name, replaced: true) { continue }
            if !named.isEmpty && named.contains(name.lowercased()) { continue }
            headers.add(name: name, value: value)
        }
        headers.add(name: "Authorization", value: "Bearer \(token)")
        headers.add(name: "X-Forwarded-Proto", value: publicScheme)
        headers.add(name: "X-Forwarded-Host", value: publicAuthority)
        headers.add(name: "X-Forwarded-For", value: clientAddress)
        let forwardedFor = clientAddress.contains(":") ? "\"[\(clientAddress)]\"" : clientAddress
        headers.add(name: "Forwarded", value: "for=\(forwardedFor);host=\"\(publicAuthority)\";proto=\(publicScheme)")
        return headers
    }

    /// Whether a header name is hop-by-hop (or, with `replaced`, one Portcullis sets itself),
    /// compared without allocating: this runs for every header of every request and response.
    static func isDropped(_ name: String, replaced: Bool) -> Bool {
        let utf8 = name.utf8
        // The shortest dropped name has 2 bytes ("te"), the longest 18 ("x-forwarded-prefix").
        guard utf8.count >= 2 && utf8.count <= 19 else { return false }
        for candidate in hopByHopList where equalsIgnoringASCIICase(utf8, candidate) { return true }
        if replaced {
            for candidate in replacedUpstreamList where equalsIgnoringASCIICase(utf8, candidate) { return true }
        }
        return false
    }

    private static let hopByHopList: [[UInt8]] = hopByHop.map { Array($0.utf8) }
    private static let replacedUpstreamList: [[UInt8]] = replacedUpstream.map { Array($0.utf8) }

    /// Compares with a lowercase ASCII `candidate`.
    private static func equalsIgnoringASCIICase(_ name: String.UTF8View, _ candidate: [UInt8]) -> Bool {
        guard name.count == candidate.count else { return false }
        var index = 0
        for byte in name {
            let lower = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            if lower != candidate[index] { return false }
            index += 1
        }
        return true
    }

    /// How the upstream request frames its body: the client's `Content-Length` as sent; a
    /// chunked body (or an HTTP/2 write without a length) chunked; no framing header otherwise.
    static func frameBody(of client: HTTPRequestHead, into headers: inout HTTPHeaders) {
        if let length = client.headers.first(name: "content-length") {
            headers.add(name: "Content-Length", value: length)
        } else if client.headers["transfer-encoding"].contains(where: { $0.lowercased().contains("chunked") })
            || (client.version.major == 2 && [.POST, .PUT, .PATCH].contains(client.method))
        {
            headers.add(name: "Transfer-Encoding", value: "chunked")
        }
    }

    /// The registry's response headers as they go to the client.
    static func clientResponseHeaders(from upstream: HTTPHeaders) -> HTTPHeaders {
        let named = connectionNamed(upstream)
        var headers = HTTPHeaders()
        headers.reserveCapacity(upstream.count)
        for (name, value) in upstream {
            if isDropped(name, replaced: false) { continue }
            if !named.isEmpty && named.contains(name.lowercased()) { continue }
            headers.add(name: name, value: value)
        }
        return headers
    }

    /// Header names listed in `Connection`, which are hop-by-hop too.
    private static func connectionNamed(_ headers: HTTPHeaders) -> Set<String> {
        var names: Set<String> = []
        guard headers.contains(name: "connection") else { return names }
        for value in headers["connection"] {
            for token in value.split(separator: ",") {
                names.insert(token.trimmingCharacters(in: .whitespaces).lowercased())
            }
        }
        return names
    }
}
