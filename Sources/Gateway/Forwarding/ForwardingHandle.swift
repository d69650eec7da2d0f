import NIOCore
import NIOHTTP1

/// The asynchronous handler's way into the forwarding core of its connection: a request it
/// decided to forward is relayed by the connection's ``ForwardingHandler`` on the event loop,
/// and the request body the handler reads is pushed to it part by part.
struct ForwardingHandle: Sendable {
    private let handler: NIOLoopBound<ForwardingHandler>
    private let eventLoop: any EventLoop

    init(_ handler: ForwardingHandler, eventLoop: any EventLoop) {
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
        self.eventLoop = eventLoop
    }

    /// Relays `request` to the registry with `body` (if any) and its response to the client.
    /// - Returns: how the exchange ended; the response has been handed to the channel.
    /// `body` is read off the client's connection (``RequestBody``) or was read already
    /// (``BufferedRequestBody``).
    func forward<Body: AsyncSequence<ByteBuffer, any Error>>(
        _ request: @escaping @autoclosure @Sendable () -> any ForwardedRequest, body: Body?, keepAlive: Bool, isHEAD: Bool
    ) async -> ExchangeOutcome {
        let handler = self.handler
        let eventLoop = self.eventLoop
        let exchange: EventLoopFuture<ExchangeOutcome> = eventLoop.flatSubmit {
            handler.value.forwardHandedOff(request(), keepAlive: keepAlive, isHEAD: isHEAD, on: eventLoop)
        }
        do {
            if let body {
                for try await buffer in body {
                    try await eventLoop.flatSubmit { handler.value.pushBody(.body(.byteBuffer(buffer)), on: eventLoop) }.get()
                }
            }
            try await eventLoop.flatSubmit { handler.value.pushBody(.end(nil), on: eventLoop) }.get()
        } catch {
            // The client went away or the exchange ended early: the outcome says which.
        }
        do {
            return try await exchange.get()
        } catch {
            var outcome = ExchangeOutcome()
            outcome.failure = .clientGoneDuringRequest
            outcome.closesConnection = true
            return outcome
        }
    }
}
