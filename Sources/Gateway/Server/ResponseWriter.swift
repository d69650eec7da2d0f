import NIOCore
import NIOHTTP1

/// Writes one response on an HTTP/1.1 connection, remembering whether the head went out.
final class ResponseWriter: @unchecked Sendable {
    // Used by one request task at a time.
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    private let allocator: ByteBufferAllocator
    /// The request method, so that HEAD responses carry no body.
    let requestMethod: HTTPMethod
    /// Whether the head has been written.
    private(set) var headSent = false
    /// The status written, for logs.
    private(set) var status: HTTPResponseStatus?
    /// Body bytes written, for logs.
    private(set) var bytesWritten = 0
    /// Whether the response's end has been handed to the channel.
    private(set) var ended = false
    /// Set when the connection must close after this response.
    var closeConnection = false
    /// Consulted when the head is written: `true` closes the connection after this response.
    var closeWhen: @Sendable () -> Bool = { false }
    /// The request's log fields, for the audit stream.
    var requestLog: RequestLog?
    /// The client address.
    var peer = ""
    /// HTTP/2 streams have no `Connection` header.
    var isHTTP2 = false

    init(outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, allocator: ByteBufferAllocator, requestMethod: HTTPMethod) {
        self.outbound = outbound
        self.allocator = allocator
        self.requestMethod = requestMethod
    }

    /// Sends `100 Continue`.
    func writeContinue() async throws {
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .continue)))
    }

    /// A head not yet written: it goes out together with the first body chunk or the end,
    /// saving a flush (and a system call) per response.
    private var pendingHead: HTTPServerResponsePart?

    /// The head's `Content-Length`, if it has one.
    private var declaredLength: Int?

    /// Writes the response head (sent with the first body chunk or the end).
    func writeHead(status: HTTPResponseStatus, headers: HTTPHeaders) async throws {
        var headers = headers
        if !closeConnection && closeWhen() { closeConnection = true }
        if closeConnection && !isHTTP2 { headers.replaceOrAdd(name: "connection", value: "close") }
        self.status = status
        headSent = true
        declaredLength = headers.first(name: "content-length").flatMap { Int($0) }
        pendingHead = .head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))
    }

    /// Writes a body chunk (dropped for HEAD).
    func writeBody(_ buffer: ByteBuffer) async throws {
        guard requestMethod != .HEAD else { return }
        bytesWritten += buffer.readableBytes
        try await write(.body(.byteBuffer(buffer)))
    }

    /// Ends the response.
    ///
    /// On HTTP/1.1 the end of a response with a `Content-Length` puts nothing on the wire: a
    /// client that has the declared bytes may close the connection before the end is handed
    /// over (curl does, at once), and that is not a failure of the response.
    func writeEnd() async throws {
        let headAlreadySent = pendingHead == nil
        do {
            try await write(.end(nil))
        } catch where headAlreadySent && !isHTTP2 && (requestMethod == .HEAD || declaredLength == bytesWritten) {
            closeConnection = true
        }
        ended = true
    }

    private func write(_ part: HTTPServerResponsePart) async throws {
        if let head = pendingHead {
            pendingHead = nil
            try await outbound.write(contentsOf: [head, part])
        } else {
            try await outbound.write(part)
        }
    }

    /// Notes a response that the forwarding core wrote for this request.
    func recordForwarded(_ outcome: ExchangeOutcome) {
        if outcome.status != 0 {
            headSent = true
            status = HTTPResponseStatus(statusCode: outcome.status)
        }
        bytesWritten = outcome.bytesOut
        ended = outcome.completed
        if outcome.closesConnection || !outcome.completed { closeConnection = true }
    }

    /// Writes a whole response with a fixed body.
    func respond(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: [UInt8], contentType: String) async throws {
        var headers = headers
        headers.replaceOrAdd(name: "content-type", value: contentType)
        headers.replaceOrAdd(name: "content-length", value: String(body.count))
        try await writeHead(status: status, headers: headers)
        // Head, body and end in one write: one flush, and nothing left to write once the client
        // has the response.
        var parts: [HTTPServerResponsePart] = []
        if let head = pendingHead { parts.append(head) }
        pendingHead = nil
        if !body.isEmpty && requestMethod != .HEAD {
            parts.append(.body(.byteBuffer(allocator.buffer(bytes: body))))
            bytesWritten += body.count
        }
        parts.append(.end(nil))
        try await outbound.write(contentsOf: parts)
        ended = true
    }

    /// Writes a registry-style error response.
    func respond(_ error: RegistryError, message: String, detail: RegistryErrorBody.Detail? = nil, headers: HTTPHeaders = [:]) async throws {
        var headers = headers
        headers.replaceOrAdd(name: "docker-distribution-api-version", value: "registry/2.0")
        try await respond(
            status: error.status, headers: headers, body: RegistryErrorBody(error, message: message, detail: detail).json,
            contentType: "application/json; charset=utf-8")
    }
}
