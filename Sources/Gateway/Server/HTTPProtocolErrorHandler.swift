import Logging
import NIOCore
import NIOHTTP1

/// Answers HTTP/1.1 framing errors (malformed requests, oversized headers, smuggling
/// attempts such as Content-Length with Transfer-Encoding) with a defined response and closes
/// the connection; a response already under way, or already given to the request whose body
/// turned out malformed, is not followed by a second one: the connection is simply closed, and
/// nothing a handler writes after the refusal goes out.
///
/// Oversized headers get `431 Request Header Fields Too Large`, everything else `400`.
/// Heads the parser accepts but whose framing another hop could read differently are refused
/// here too, before any handler sees them: a `Transfer-Encoding` other than exactly `chunked`
/// (`501`, as Go's net/http and nginx answer), `Transfer-Encoding` in an HTTP/1.0 request, and
/// an HTTP/1.1 request without exactly one `Host` (`400`, RFC 9112 §6.1 and §3.2).
final class HTTPProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var responseInFlight = false
    /// A request head was read and its end not yet.
    private var requestOpen = false
    /// The open request already got a complete response (its body is still arriving).
    private var openRequestAnswered = false
    /// A refused head: everything after it is dropped until the connection closes.
    private var refusing = false
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refusing else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if let refusal = Self.framingRefusal(head) {
                refusing = true
                refuse(context: context, status: refusal.status, message: refusal.message, reason: refusal.reason)
                return
            }
            requestOpen = true
            openRequestAnswered = false
        case .end:
            requestOpen = false
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        guard !refusing else { return }
        refusing = true
        if responseInFlight || (requestOpen && openRequestAnswered) {
            // A response is under way, or the request already has its answer: a second
            // response would be unsolicited (and trips NIO's pipeline handler). Just close.
            logger.warning("malformed HTTP request refused", metadata: ["peer": "\(peer(context))", "reason": "\(parserError)"])
            context.close(promise: nil)
            return
        }
        refuse(
            context: context, status: parserError == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest,
            message: parserError == .headerOverflow ? "request headers are too large" : "malformed HTTP request", reason: "\(parserError)")
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !refusing else {
            // The connection is being closed after a refusal: nothing else goes out (a handler
            // that failed on the broken body must not answer a second time).
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200:
            responseInFlight = true
        case .end:
            responseInFlight = false
            if requestOpen { openRequestAnswered = true }
        default:
            break
        }
        context.write(data, promise: promise)
    }

    private func peer(_ context: ChannelHandlerContext) -> String {
        context.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// Logs, writes a short OCI error with `Connection: close`, and closes.
    private func refuse(context: ChannelHandlerContext, status: HTTPResponseStatus, message: String, reason: String) {
        logger.warning("malformed HTTP request refused", metadata: ["peer": "\(peer(context))", "reason": "\(reason)"])
        let body = RegistryErrorBody(.unsupportedRequest, message: message).json
        var headers = HTTPHeaders()
        headers.add(name: "connection", value: "close")
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(body.count))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }

    /// Why a head the parser accepted must still be refused, if it must.
    static func framingRefusal(_ head: HTTPRequestHead) -> (status: HTTPResponseStatus, message: String, reason: String)? {
        let transferEncoding = head.headers["transfer-encoding"]
        if !transferEncoding.isEmpty {
            if head.version == .http1_0 {
                return (.badRequest, "malformed HTTP request", "Transfer-Encoding in an HTTP/1.0 request")
            }
            let codings = transferEncoding.flatMap { $0.split(separator: ",") }.map { coding in
                String(coding.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed()).lowercased()
            }
            if codings != ["chunked"] {
                return (.notImplemented, "unsupported transfer coding", "Transfer-Encoding other than chunked: \(transferEncoding.joined(separator: ", "))")
            }
        }
        if head.version == .http1_1 && head.headers["host"].count != 1 {
            return (.badRequest, "malformed HTTP request", "\(head.headers["host"].isEmpty ? "no" : "more than one") Host header")
        }
        return nil
    }
}
