import NIOHTTP1
import Testing

@testable import Gateway

/// The proxy's header rules, in both directions (the registry cannot show what it received).
@Suite("forwarded headers")
struct ForwardingHeadersTests {
    static let client: HTTPHeaders = [
        "Host": "evil.example", "Accept": "application/vnd.oci.image.manifest.v1+json",
        "Accept": "application/vnd.docker.distribution.manifest.v2+json", "Authorization": "Basic YWxpY2U6c2VjcmV0",
        "Connection": "keep-alive, X-Hop", "X-Hop": "dropped", "Keep-Alive": "timeout=5", "TE": "trailers",
        "Proxy-Authorization": "Basic eA==", "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "http", "Forwarded": "for=6.6.6.6;host=evil.example", "X-Real-IP": "6.6.6.6",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "vendor=1",
        "User-Agent": "skopeo/1.9.3", "Content-Length": "5", "Expect": "100-continue",
    ]

    @Test("upstream: hop-by-hop and Connection-named headers dropped; Authorization, Host, forwarding headers replaced; repeated Accept, traceparent and the rest kept in order")
    func upstreamRequestHeaders() {
        let headers = ForwardingHeaders.upstreamRequestHeaders(
            from: Self.client, token: "minted", publicScheme: "https", publicAuthority: "registry.example.com", clientAddress: "203.0.113.7")
        #expect(headers["accept"] == ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"])
        #expect(headers["traceparent"] == ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"])
        #expect(headers["tracestate"] == ["vendor=1"])
        #expect(headers["user-agent"] == ["skopeo/1.9.3"])
        for dropped in ["connection", "x-hop", "keep-alive", "te", "proxy-authorization", "x-real-ip", "host", "content-length", "expect"] {
            #expect(headers[dropped].isEmpty, "\(dropped) reached the registry: \(headers[dropped])")
        }
        #expect(headers["authorization"] == ["Bearer minted"])
        #expect(headers["x-forwarded-for"] == ["203.0.113.7"])
        #expect(headers["x-forwarded-host"] == ["registry.example.com"])
        #expect(headers["x-forwarded-proto"] == ["https"])
        #expect(headers["forwarded"] == [#"for=203.0.113.7;host="registry.example.com";proto=https"#])
    }

    @Test("an IPv6 client is quoted and bracketed in Forwarded")
    func ipv6ClientInForwarded() {
        let headers = ForwardingHeaders.upstreamRequestHeaders(
            from: [:], token: "t", publicScheme: "http", publicAuthority: "r:5000", clientAddress: "2001:db8::1")
        #expect(headers["forwarded"] == [#"for="[2001:db8::1]";host="r:5000";proto=http"#])
    }

    @Test("downstream: the registry's hop-by-hop headers are dropped, everything else (Location, Docker-Content-Digest, repeated Link) kept")
    func clientResponseHeaders() {
        let upstream: HTTPHeaders = [
            "Connection": "close, X-Internal", "X-Internal": "secret", "Transfer-Encoding": "chunked", "Keep-Alive": "timeout=5",
            "Location": "https://registry.example.com/v2/a/blobs/uploads/1", "Docker-Content-Digest": "sha256:abc",
            "Link": "</v2/_catalog?n=1&last=a>; rel=\"next\"", "Link": "<https://example.com>; rel=\"other\"",
        ]
        let headers = ForwardingHeaders.clientResponseHeaders(from: upstream)
        #expect(headers.map(\.name) == ["Location", "Docker-Content-Digest", "Link", "Link"])
    }
}
