import Logging
import NIOCore

/// Keeps one connection's failure from ending the accept loop.
///
/// The listener's pipeline ends in the handler behind `NIOAsyncChannel`'s inbound sequence, and
/// an error reaching it finishes that sequence: the server would stop accepting and the process
/// exit. NIO reports there what goes wrong while it hands over an accepted connection (its
/// options, its initializer), so this handler, placed right after NIO's `AcceptHandler`, logs
/// such an error and swallows it. The connection concerned has been closed by NIO already.
final class ListenerErrorHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any
    typealias InboundOut = Any

    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.warning("a connection failed while being accepted; the listener goes on", metadata: ["error": "\(error)"])
    }

    /// Adds the handler after NIO's `AcceptHandler` of a bound listener (before the async channel's own).
    static func install(on listener: any Channel, logger: Logger) async throws {
        try await listener.eventLoop.submit {
            let pipeline = listener.pipeline.syncOperations
            let accept = try pipeline.context(name: "AcceptHandler")
            try pipeline.addHandler(ListenerErrorHandler(logger: logger), position: .after(accept.handler))
        }.get()
    }
}
