import NIOCore
import NIOEmbedded
import NIOHTTP1

@testable import Gateway

// Test doubles of the forwarding core's collaborators, shared by the suites that drive it on
// `EmbeddedChannel`s: the admission, the forwarded request, the upstream connection source.

/// Counts the `read` calls that travel past it towards the head of a pipeline.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// Collects the request parts the forwarding handler passes on (requests handed off).
final class InboundCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    var parts: [HTTPServerRequestPart] = []
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parts.append(unwrapInboundIn(data))
    }
}

/// A request the admission forwarded: its rewritten head, and what the core told it.
final class TestRequest: ForwardedRequest {
    let upstreamHead: HTTPRequestHead
    let endpoint: UpstreamEndpoint
    let silenceTimeout: TimeAmount = .seconds(30)
    /// What to do with the registry's response head.
    var decide: (HTTPResponseHead) -> ResponseDecision = { .relay($0) }
    var responseHeads: [HTTPResponseHead] = []
    var upstreamErrors: [any Error] = []
    var outcomes: [ExchangeOutcome] = []

    static let unavailableBody = Array("registry unavailable\n".utf8)

    init(upstreamHead: HTTPRequestHead) throws {
        self.upstreamHead = upstreamHead
        self.endpoint = try UpstreamEndpoint(url: "http://127.0.0.1:5000")
    }

    func responseHead(_ head: HTTPResponseHead) -> ResponseDecision {
        responseHeads.append(head)
        return decide(head)
    }

    func upstreamFailed(_ error: any Error) -> LocalResponse {
        upstreamErrors.append(error)
        return LocalResponse(status: .serviceUnavailable, headers: ["Content-Type": "text/plain"], body: Self.unavailableBody)
    }

    func finished(_ outcome: ExchangeOutcome) {
        outcomes.append(outcome)
    }
}

/// Admits every head (rewriting its credentials and `Host`), except those `handOff` picks.
final class TestAdmission: RequestAdmission, @unchecked Sendable {
    var handOff: (HTTPRequestHead) -> Bool = { _ in false }
    /// Answers heads at once with this instead of forwarding, when it returns one.
    var answer: (HTTPRequestHead) -> LocalResponse? = { _ in nil }
    /// Set on each admitted request before it is returned.
    var configure: (TestRequest) -> Void = { _ in }
    var clients: [ClientRequest] = []
    var admitted: [TestRequest] = []

    func admit(_ head: HTTPRequestHead, client: ClientRequest) -> Admission? {
        clients.append(client)
        if handOff(head) { return nil }
        if let response = answer(head) { return .respond(response) }
        guard let request = try? TestRequest(upstreamHead: Self.rewritten(head)) else { return nil }
        configure(request)
        admitted.append(request)
        return .forward(request)
    }

    /// The head an admitted request sends to the registry: the client's credentials replaced by
    /// an upstream token, `Host` by the registry's.
    static func rewritten(_ head: HTTPRequestHead) -> HTTPRequestHead {
        var upstream = head
        upstream.headers.remove(name: "authorization")
        upstream.headers.replaceOrAdd(name: "Host", value: "registry")
        upstream.headers.add(name: "Authorization", value: "Bearer upstream-token")
        return upstream
    }
}

/// Upstream connections on `EmbeddedChannel`s: [ReadCounter, UpstreamConnection], connected.
/// A connection released as reusable (and still open) is handed out again, like the real pool.
final class TestSource: UpstreamConnectionSource, @unchecked Sendable {
    let loop: EmbeddedEventLoop
    var channels: [EmbeddedChannel] = []
    var counters: [ReadCounter] = []
    var connections: [UpstreamConnection] = []
    var idle: [UpstreamConnection] = []
    var releases: [(connection: UpstreamConnection, reusable: Bool)] = []
    var acquisitions = 0
    /// When set, the next acquisition fails with this.
    var failNext: (any Error)?
    /// When set, acquisitions complete only when the test completes `pending`.
    var deferred = false
    var pending: [(promise: EventLoopPromise<UpstreamConnection>, connection: UpstreamConnection)] = []

    init(loop: EmbeddedEventLoop) {
        self.loop = loop
    }

    func acquire(_ endpoint: UpstreamEndpoint, on eventLoop: any EventLoop, silenceTimeout: TimeAmount) -> EventLoopFuture<UpstreamConnection> {
        acquisitions += 1
        if let error = failNext {
            failNext = nil
            return loop.makeFailedFuture(error)
        }
        if let connection = idle.popLast() {
            connection.silenceTimeout = silenceTimeout
            return loop.makeSucceededFuture(connection)
        }
        let channel = EmbeddedChannel(handler: nil, loop: loop)
        let counter = ReadCounter()
        let connection = UpstreamConnection(silenceTimeout: silenceTimeout)
        do {
            try channel.pipeline.syncOperations.addHandler(counter)
            try channel.pipeline.syncOperations.addHandler(connection)
            channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 5000), promise: nil)
        } catch {
            return loop.makeFailedFuture(error)
        }
        channels.append(channel)
        counters.append(counter)
        connections.append(connection)
        if deferred {
            let promise = loop.makePromise(of: UpstreamConnection.self)
            pending.append((promise, connection))
            return promise.futureResult
        }
        return loop.makeSucceededFuture(connection)
    }

    func release(_ connection: UpstreamConnection, endpoint: UpstreamEndpoint, reusable: Bool) {
        releases.append((connection, reusable))
        guard reusable, connection.isActive else {
            connection.close()
            return
        }
        connection.delegate = nil
        idle.append(connection)
    }
}

/// A registry that cannot be reached (a failed connection attempt).
struct Unreachable: Error {}
