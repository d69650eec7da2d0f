import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import Gateway

/// The listener, served in this process on a loopback port: a connection whose setup fails is
/// closed alone, and the listener goes on serving the next ones.
///
/// The failure is a real one: `IP_TTL` 0, which the kernel refuses (`EINVAL`) whoever asks, as
/// it refused `SO_DEBUG` to a non-root Portcullis, which then exited at its first connection.
@Suite("listener: one connection's failure")
struct ConnectionSetupFailureTests {
    /// Answers every request with 200 `ok`.
    struct OK: RequestHandler {
        func handle(_ request: IncomingRequest, writer: ResponseWriter) async throws {
            try await writer.respond(status: .ok, body: Array("ok\n".utf8), contentType: "text/plain")
        }
    }

    /// Collects what a client connection receives until it closes.
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private(set) var received = ""
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += String(buffer: unwrapInboundIn(data))
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    /// Sends `request` on a new connection and returns everything received until the server closed.
    static func exchange(_ request: String, port: Int) async throws -> String {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try? await channel.writeAndFlush(ByteBuffer(string: request)).get()
        try await channel.closeFuture.get()
        return try await channel.eventLoop.submit { collector.received }.get()
    }

    @Test("a connection whose socket option the kernel refuses is closed without an answer, and the listener serves the next connections")
    func failedSocketOptionClosesThatConnectionOnly() async throws {
        let attempts = Atomic<Int>(0)
        var server = HTTPServer(host: "127.0.0.1", port: 0, handler: OK(), logger: Logger(label: "test"), metrics: GatewayMetrics())
        server.prepareConnection = { channel in
            // The first connection gets an option the kernel refuses; the others the real ones.
            if attempts.add(1, ordering: .relaxed).newValue == 1 {
                try channel.syncOptions?.setOption(.ipOption(NIOBSDSocket.Option(rawValue: CInt(IP_TTL))), value: 0)
            }
            try HTTPServer.disableNagle(channel)
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let serving = Task { [server] in
            try await server.run(onListening: { continuation.yield($0) })
        }
        defer { serving.cancel() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())

        let request = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        let refused = try await Self.exchange(request, port: port)
        #expect(refused.isEmpty, "the refused connection got an answer: \(refused.debugDescription)")
        for _ in 0..<3 {
            let served = try await Self.exchange(request, port: port)
            #expect(served.hasPrefix("HTTP/1.1 200 OK"), "\(served.debugDescription)")
            #expect(served.hasSuffix("ok\n"))
        }
        #expect(attempts.load(ordering: .relaxed) == 4)
    }
}
