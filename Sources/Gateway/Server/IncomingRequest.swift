import NIOCore
import NIOHTTP1

/// One request as handlers see it: the head, the split target, and the streaming body.
struct IncomingRequest: Sendable {
    /// The request head as received.
    let head: HTTPRequestHead
    /// The path part of the target, exactly as received.
    let path: String
    /// The query string without `?`, exactly as received.
    let query: String?
    /// The body, read on demand.
    let body: RequestBody
    /// The peer's address, for logs and `X-Forwarded-For`.
    let remoteAddress: String
    /// A short id for correlating log lines.
    let id: String
    /// The connection's forwarding core, which relays an authorized request to the registry.
    let forwarding: ForwardingHandle?

    init(head: HTTPRequestHead, body: RequestBody, remoteAddress: String, id: String, forwarding: ForwardingHandle? = nil) {
        self.head = head
        self.forwarding = forwarding
        self.body = body
        self.remoteAddress = remoteAddress
        self.id = id
        if let mark = head.uri.firstIndex(of: "?") {
            self.path = String(head.uri[..<mark])
            self.query = String(head.uri[head.uri.index(after: mark)...])
        } else {
            self.path = head.uri
            self.query = nil
        }
    }

    /// Whether the client announced a body (a length above zero, or chunked framing).
    var hasBody: Bool {
        if head.headers["transfer-encoding"].contains(where: { $0.lowercased().contains("chunked") }) { return true }
        if let contentLength { return contentLength > 0 }
        // HTTP/2 frames bodies itself: a write without a length may still carry one.
        return head.version.major == 2 && [.POST, .PUT, .PATCH].contains(head.method)
    }

    /// The announced body length.
    var contentLength: Int64? {
        head.headers.first(name: "content-length").flatMap { Int64($0) }
    }
}

/// Something that answers requests.
protocol RequestHandler: Sendable {
    /// Answers `request`, writing the whole response to `writer`.
    func handle(_ request: IncomingRequest, writer: ResponseWriter) async throws
}
