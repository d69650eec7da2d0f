import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import Gateway

/// A malformed request pipelined behind a download on one HTTP/1.1 connection whose client is
/// not reading (issue 21), through the real HTTP/1 pipeline of ``HTTPServer/configureHTTP1``:
/// NIO's codec and pipelining handler, `HTTPProtocolErrorHandler`, `RequestHeadTimeoutHandler`,
/// the forwarding core, and the hand-off to the request loop.
///
/// The download is admitted and forwarded; the registry's head and first body parts reach the
/// client; the client stops reading, so the registry's side is paused; the second request, whose
/// chunked body makes the parser fail, arrives; then the client reads again. The connection must
/// end with the whole download and then a close, or with an immediate close: never open, with
/// nothing more to come and the registry's side paused.
///
/// The clock never moves here, so a connection that only a timeout (`timeouts.request_head`,
/// `timeouts.response_stall`) would close counts as stalled.
@Suite("a malformed request pipelined behind a download to a client that is not reading")
struct PipelinedMalformedRequestTests {
    // MARK: The client's socket and the registry's

    /// The client's socket, as a socket channel's pending writes behave: a write waits here until
    /// a flush, and a flushed write goes out only while the client reads. While the client does
    /// not (``fill(_:)``), flushed writes wait too, with their promises pending, and the channel is
    /// not writable; ``drain(_:)`` lets them out in order and makes it writable again. A close fails
    /// every write still waiting, flushed or not, and any write after it: those bytes never reach
    /// the client. (`EmbeddedChannel` alone would still pass writes flushed after its close.)
    final class ClientSocket: ChannelOutboundHandler {
        typealias OutboundIn = Any

        private var context: ChannelHandlerContext?
        private var waiting: [(data: NIOAny, promise: EventLoopPromise<Void>?)] = []
        /// How many of `waiting` a flush covered.
        private var flushedCount = 0
        private var isClosed = false
        private(set) var isFull = false

        /// Writes flushed but waiting for the client to read.
        var waitingWrites: Int { flushedCount }

        func handlerAdded(context: ChannelHandlerContext) {
            self.context = context
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            guard !isClosed else {
                promise?.fail(ChannelError.ioOnClosedChannel)
                return
            }
            waiting.append((data, promise))
        }

        func flush(context: ChannelHandlerContext) {
            guard !isClosed else { return }
            flushedCount = waiting.count
            if !isFull { writeOut(context: context) }
        }

        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            if mode == .all {
                isClosed = true
                let dropped = waiting
                waiting = []
                flushedCount = 0
                for write in dropped { write.promise?.fail(ChannelError.ioOnClosedChannel) }
            }
            context.close(mode: mode, promise: promise)
        }

        /// Passes the flushed writes to the client.
        private func writeOut(context: ChannelHandlerContext) {
            let out = waiting.prefix(flushedCount)
            waiting.removeFirst(flushedCount)
            flushedCount = 0
            for write in out { context.write(write.data, promise: write.promise) }
            context.flush()
        }

        /// The client stops reading: its buffers fill and the channel turns unwritable.
        func fill(_ channel: EmbeddedChannel) {
            isFull = true
            channel.isWritable = false
            channel.pipeline.fireChannelWritabilityChanged()
        }

        /// The client reads everything flushed to it: the channel turns writable again.
        func drain(_ channel: EmbeddedChannel) {
            guard let context, !isClosed else { return }
            isFull = false
            writeOut(context: context)
            channel.isWritable = true
            channel.pipeline.fireChannelWritabilityChanged()
        }
    }

    /// One HTTP/1.1 client connection through `HTTPServer.configureHTTP1`, with a registry whose
    /// socket is read the way autoRead reads it.
    final class Connection {
        let loop = EmbeddedEventLoop()
        let client: EmbeddedChannel
        let socket = ClientSocket()
        let admission = TestAdmission()
        let source: TestSource
        let tracker = ConnectionTracker()
        let served: HTTPServer.HandedOffConnection
        /// Everything the client has received, in order.
        private(set) var received: [UInt8] = []
        /// Reads of each upstream channel that got past its `UpstreamConnection` (so reached the
        /// registry's socket) and have been answered by a burst.
        private var readsTaken: [Int] = []

        init() throws {
            client = EmbeddedChannel(handler: nil, loop: loop)
            source = TestSource(loop: loop)
            try client.pipeline.syncOperations.addHandler(socket)
            let setup = HTTPServer.ForwardingSetup(
                admission: admission, pool: source, connections: tracker, number: 1, clientAddress: { _ in "192.0.2.1" })
            served = try HTTPServer.configureHTTP1(
                on: client, logger: Logger(label: "test"), headTimeout: .seconds(60), stallTimeout: .seconds(60), forwarding: setup)
            client.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1), promise: nil)
            _ = tracker.opened(1, channel: client)
            loop.run()
        }

        /// The client sends these bytes.
        func send(_ text: String) throws {
            try client.writeInbound(ByteBuffer(string: text))
            loop.run()
            collect()
        }

        /// The registry sends its next bursts on upstream connection `index`, one per read that
        /// reached its socket, while the reads let it and at most `limit` of them; autoRead asks
        /// for the next read after each burst.
        /// - Returns: how many bursts went out.
        @discardableResult
        func registrySends(_ bursts: inout [[HTTPClientResponsePart]], on index: Int = 0, limit: Int = .max) throws -> Int {
            while readsTaken.count < source.channels.count {
                // A new connection: autoRead reads as soon as it is active.
                readsTaken.append(0)
                source.channels[readsTaken.count - 1].read()
            }
            let channel = source.channels[index]
            var sent = 0
            while sent < limit, !bursts.isEmpty, channel.isActive, source.counters[index].reads > readsTaken[index] {
                readsTaken[index] = source.counters[index].reads
                for part in bursts.removeFirst() { channel.pipeline.syncOperations.fireChannelRead(NIOAny(part)) }
                channel.pipeline.syncOperations.fireChannelReadComplete()
                channel.read()
                loop.run()
                sent += 1
            }
            collect()
            return sent
        }

        /// Whether a read on upstream connection `index` would reach the registry now.
        func upstreamReads(on index: Int = 0) -> Bool {
            let counter = source.counters[index]
            let before = counter.reads
            source.channels[index].read()
            return counter.reads > before
        }

        private func collect() {
            while let data = try? client.readOutbound(as: IOData.self) {
                guard case .byteBuffer(let buffer) = data else { continue }
                received += buffer.readableBytesView
            }
        }

        /// Drains what is still waiting for the client.
        func clientReads() {
            socket.drain(client)
            loop.run()
            collect()
        }

        func tearDown() {
            if client.isActive { client.close(promise: nil) }
            for channel in source.channels where channel.isActive { channel.close(promise: nil) }
            loop.run()
            try? loop.syncShutdownGracefully()
        }
    }

    // MARK: The scenario

    /// The request pipelined behind the download; each body breaks chunked framing.
    enum Second: String, CaseIterable, CustomStringConvertible {
        /// An authenticated upload: forwarded, its first chunk relayed before the break.
        case forwardedUpload
        /// An unauthenticated upload: answered at once (401) before its body ended.
        case answeredUpload
        /// A token request: handed to the request loop.
        case handedOffToken
        /// A health check with a chunk that runs past its size: handed to the request loop.
        case handedOffHealthz

        var description: String { rawValue }

        var bytes: String {
            switch self {
            case .forwardedUpload:
                "POST /v2/alice/app/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
            case .answeredUpload:
                "POST /v2/alice/app/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
            case .handedOffToken:
                "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ngrant\r\nzz\r\n"
            case .handedOffHealthz:
                "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabcXY"
            }
        }
    }

    /// When the second request reaches Portcullis.
    enum Arrival: String, CaseIterable, CustomStringConvertible {
        /// In the same bytes as the download's request, as the integration test sends it: NIO's
        /// pipelining handler holds its parts and the parse error until the download has ended.
        case withTheDownload
        /// After the client stopped reading: the registry's side is paused, its end unread.
        case whileResponseEndUnread
        /// After the registry's end has been relayed into the client's full socket.
        case whileResponseEndQueued

        var description: String { rawValue }
    }

    /// How the connection ended.
    enum Ending: Equatable, CustomStringConvertible {
        /// The whole download, then these answers (their statuses), then a close.
        case downloadThenClose(answers: [Int])
        /// A close before the whole download went out (its head and part of its body did).
        case closedEarly
        /// Bytes that are not the download's head and body followed by whole responses.
        case garbled(String)
        /// Still open, with nothing more to come.
        case open(String)

        var description: String {
            switch self {
            case .downloadThenClose(let answers): "the whole download, then \(answers.isEmpty ? "no answer" : "\(answers)"), then a close"
            case .closedEarly: "a close before the download was whole"
            case .garbled(let what): "garbled: \(what)"
            case .open(let state): "open: \(state)"
            }
        }
    }

    static let download = "GET /v2/alice/pipelined/blobs/sha256:0123 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n"
    static let chunk = 16 * 1024
    static let chunks = 4

    /// The download's body: `chunks` parts of `chunk` bytes, each its own repeated byte.
    static func bodyPart(_ index: Int) -> [UInt8] { Array(repeating: UInt8(ascii: "a") + UInt8(index), count: chunk) }

    /// Each expected ending follows from NIO's pipelining handler and `HTTPProtocolErrorHandler`:
    /// the parse error reaches the latter only once the download's end has been written.
    /// - A request still without an answer gets a 400, written and flushed behind the download;
    ///   the connection closes once that has gone out.
    /// - The answered upload's 401 is written while the download's last part is not yet flushed
    ///   (the end came in the same read), and the parse error follows within that write: the
    ///   connection closes at once, and neither the download's tail nor the 401 goes out. This is
    ///   the immediate close; the client sees a download cut short.
    static let cases: [(Second, Arrival, Ending)] = [
        (.forwardedUpload, .withTheDownload, .downloadThenClose(answers: [400])),
        (.forwardedUpload, .whileResponseEndUnread, .downloadThenClose(answers: [400])),
        (.forwardedUpload, .whileResponseEndQueued, .downloadThenClose(answers: [400])),
        (.answeredUpload, .withTheDownload, .closedEarly),
        (.answeredUpload, .whileResponseEndUnread, .closedEarly),
        (.answeredUpload, .whileResponseEndQueued, .closedEarly),
        (.handedOffToken, .withTheDownload, .downloadThenClose(answers: [400])),
        (.handedOffToken, .whileResponseEndUnread, .downloadThenClose(answers: [400])),
        (.handedOffToken, .whileResponseEndQueued, .downloadThenClose(answers: [400])),
        (.handedOffHealthz, .withTheDownload, .downloadThenClose(answers: [400])),
        (.handedOffHealthz, .whileResponseEndUnread, .downloadThenClose(answers: [400])),
        (.handedOffHealthz, .whileResponseEndQueued, .downloadThenClose(answers: [400])),
    ]

    @Test(
        "the parse error arrives while the download is written to a client that is not reading: the whole download then a close, or an immediate close; never an open connection with the registry's side paused",
        arguments: cases)
    func malformedBehindUnreadDownload(second: Second, arrival: Arrival, expected: Ending) throws {
        let connection = try Connection()
        defer { connection.tearDown() }
        connection.admission.handOff = { $0.uri == "/token" || $0.uri == "/healthz" }
        connection.admission.answer = { head in
            head.headers["authorization"].isEmpty
                ? LocalResponse(status: .unauthorized, headers: ["www-authenticate": #"Bearer realm="test""#], body: Array("{}".utf8)) : nil
        }

        // The download is admitted and forwarded.
        try connection.send(Self.download + (arrival == .withTheDownload ? second.bytes : ""))
        #expect(connection.admission.admitted.count == 1, "the download is admitted")
        #expect(connection.source.channels.count == 1)
        // One burst per read: the head, then each body part, the last with the end (the decoder
        // ends a Content-Length body in the read that completes it).
        var bursts: [[HTTPClientResponsePart]] = [[.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": String(Self.chunk * Self.chunks)]))]]
        bursts += (0..<Self.chunks).map { [.body(ByteBuffer(bytes: Self.bodyPart($0)))] }
        bursts[bursts.count - 1].append(.end(nil))

        // The registry's head and first body part reach the client.
        #expect(try connection.registrySends(&bursts, limit: 2) == 2)
        #expect(connection.received.count > Self.chunk, "the head and first part went out")

        // The client stops reading.
        connection.socket.fill(connection.client)
        switch arrival {
        case .withTheDownload, .whileResponseEndUnread:
            // One more part: the client cannot take it, so the registry's side pauses.
            #expect(try connection.registrySends(&bursts, limit: 1) == 1)
            #expect(try connection.registrySends(&bursts) == 0, "the registry is not read while the client takes nothing")
            #expect(!connection.upstreamReads(), "the upstream connection is paused")
            #expect(bursts.last?.last == .end(nil), "the download's end is still at the registry")
        case .whileResponseEndQueued:
            // The rest and the end come in one burst and are relayed into the full socket.
            let rest = bursts.flatMap { $0 }
            bursts = [rest]
            #expect(try connection.registrySends(&bursts) == 1)
            #expect(connection.socket.waitingWrites > 0, "the download's tail and end wait in the client's socket")
        }

        if arrival != .withTheDownload {
            try connection.send(second.bytes)
        }
        #expect(connection.socket.isFull, "the parse error came while the client was not reading")

        // The client reads again; the registry sends whatever the reads ask for.
        connection.clientReads()
        try connection.registrySends(&bursts)

        let ending = Self.ending(of: connection)
        #expect(ending == expected, "\(second) arriving \(arrival)")
        if case .open = ending {
            Issue.record("a stall: \(second) arriving \(arrival) left the connection open: \(ending)")
        }
        // Whatever the ending, the registry's side is not left paused on an open connection.
        for (index, channel) in connection.source.channels.enumerated() where channel.isActive {
            let idle = connection.source.idle.contains { $0 === connection.source.connections[index] }
            #expect(idle, "an upstream connection still open is back in the pool")
            #expect(connection.upstreamReads(on: index), "an upstream connection kept open reads (it would see the registry's close)")
        }
        if second == .forwardedUpload, expected != .closedEarly {
            #expect(connection.admission.admitted.count == 2, "the upload was admitted behind the download")
        }
    }

    // MARK: Reading the client's bytes

    /// Classifies what the client got: complete responses with `Content-Length` bodies.
    static func ending(of connection: Connection) -> Ending {
        let bytes = connection.received
        if connection.client.isActive {
            return .open(
                "\(bytes.count) bytes received, \(connection.socket.waitingWrites) writes waiting, registry reads \(connection.source.counters.map(\.reads))")
        }
        var index = 0
        var responses: [(status: Int, body: ArraySlice<UInt8>)] = []
        var cut: (status: Int, body: ArraySlice<UInt8>)?
        while index < bytes.count {
            guard let headEnd = find(Array("\r\n\r\n".utf8), in: bytes, from: index) else { break }
            let head = String(decoding: bytes[index..<headEnd], as: UTF8.self).split(separator: "\r\n")
            let status = head.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
            let length = head.dropFirst().compactMap { line -> Int? in
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                return Int(parts[1].trimmingCharacters(in: .whitespaces))
            }.first ?? 0
            let bodyStart = headEnd + 4
            guard bodyStart + length <= bytes.count else {
                cut = (status, bytes[bodyStart...])
                index = bytes.count
                break
            }
            responses.append((status, bytes[bodyStart..<bodyStart + length]))
            index = bodyStart + length
        }
        let wholeDownload = (0..<chunks).flatMap(bodyPart)
        if let first = responses.first, first.status == 200, Array(first.body) == wholeDownload, index == bytes.count, cut == nil {
            return .downloadThenClose(answers: responses.dropFirst().map(\.status))
        }
        if responses.isEmpty, let cut, cut.status == 200, wholeDownload.starts(with: cut.body) {
            return .closedEarly
        }
        return .garbled("\(bytes.count) bytes: statuses \(responses.map(\.status)), \(cut.map { "cut short: \($0.status) with \($0.body.count) body bytes" } ?? "none cut short"), \(bytes.count - index) bytes unparsed")
    }

    private static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        var index = start
        while index + needle.count <= bytes.count {
            if bytes[index] == needle[0], Array(bytes[index..<index + needle.count]) == needle { return index }
            index += 1
        }
        return nil
    }
}
