import Logging
import NIOCore
import NIOHTTP1

/// Answers HTTP/1.1 framing errors (malformed requests, oversized headers, smuggling
/// attempts such as Content-Length with Transfer-Encoding) with a defined response and closes
/// the connection; a response already under way is simply cut off.
///
/// Oversized headers get `431 Request Header Fields Too Large`, everything else `400`.
final class HTTPProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = Never
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var responseInFlight = false
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        let peer = context.channel.remoteAddress?.ipAddress ?? "unknown"
        logger.warning("malformed HTTP request refused", metadata: ["peer": "\(peer)", "reason": "\(parserError)"])
        guard !responseInFlight else {
            context.close(promise: nil)
            return
        }
        let status: HTTPResponseStatus = parserError == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
        let body = RegistryErrorBody(
            code: "UNSUPPORTED", message: parserError == .headerOverflow ? "request headers are too large" : "malformed HTTP request"
        ).json
        var headers = HTTPHeaders()
        headers.add(name: "connection", value: "close")
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(body.count))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200:
            responseInFlight = true
        case .end:
            responseInFlight = false
        default:
            break
        }
        context.write(data, promise: promise)
    }
}
