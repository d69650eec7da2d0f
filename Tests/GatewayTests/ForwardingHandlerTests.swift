import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import Gateway

/// The forwarding core between a client channel and an upstream connection, both `EmbeddedChannel`s
/// on one `EmbeddedEventLoop`: what the registry receives, what the client gets, backpressure in
/// both directions, early closes on either side, and when an upstream connection is reused.
@Suite("forwarding core")
struct ForwardingHandlerTests {
    /// A client channel [ReadCounter, ForwardingHandler, InboundCollector], connected, with its
    /// admission and upstream source, all on one embedded loop.
    final class Harness {
        let loop = EmbeddedEventLoop()
        let client: EmbeddedChannel
        let clientReads = ReadCounter()
        let collector = InboundCollector()
        let admission = TestAdmission()
        let source: TestSource
        let tracker = ConnectionTracker()
        let handler: ForwardingHandler

        init() throws {
            client = EmbeddedChannel(handler: nil, loop: loop)
            source = TestSource(loop: loop)
            _ = tracker.opened(1, channel: client)
            handler = ForwardingHandler(
                admission: admission, pool: source, connections: tracker, connectionNumber: 1,
                sequence: RequestSequence(), isHTTP2: false, clientAddress: { _ in "192.0.2.1" })
            try client.pipeline.syncOperations.addHandler(clientReads)
            try client.pipeline.syncOperations.addHandler(handler)
            try client.pipeline.syncOperations.addHandler(collector)
            client.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1), promise: nil)
        }

        /// The client sends a request part.
        func send(_ part: HTTPServerRequestPart) throws {
            try client.writeInbound(part)
            loop.run()
        }

        /// The registry sends a response part on upstream connection `index`.
        func respond(_ part: HTTPClientResponsePart, on index: Int = 0) throws {
            try source.channels[index].writeInbound(part)
            loop.run()
        }

        /// What the client has been sent (flushed) since the last call.
        func clientReceived() throws -> [HTTPServerResponsePart] {
            var parts: [HTTPServerResponsePart] = []
            while let part = try client.readOutbound(as: HTTPServerResponsePart.self) { parts.append(part) }
            return parts
        }

        /// What the registry has received (flushed) on upstream connection `index` since the last call.
        func upstreamReceived(on index: Int = 0) throws -> [HTTPClientRequestPart] {
            var parts: [HTTPClientRequestPart] = []
            while let part = try source.channels[index].readOutbound(as: HTTPClientRequestPart.self) { parts.append(part) }
            return parts
        }

        var upstream: EmbeddedChannel { source.channels[0] }

        /// Every outcome reported, over all admitted requests, in order.
        var outcomes: [ExchangeOutcome] { admission.admitted.flatMap(\.outcomes) }

        /// Closes what is still open and cancels leftover timers (the embedded loop must end empty).
        func tearDown() {
            if client.isActive { client.close(promise: nil) }
            for channel in source.channels where channel.isActive { channel.close(promise: nil) }
            loop.run()
            try? loop.syncShutdownGracefully()
        }
    }

    // MARK: Fixtures

    static func request(_ method: HTTPMethod = .GET, _ uri: String = "/v2/library/alpine/manifests/3.20", headers: HTTPHeaders = [:]) -> HTTPRequestHead {
        var all: HTTPHeaders = ["Host": "portcullis.example", "Authorization": "Basic YWxpY2U6c2VjcmV0"]
        all.add(contentsOf: headers)
        return HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: all)
    }

    static func response(_ status: HTTPResponseStatus = .ok, headers: HTTPHeaders = ["Content-Length": "10"]) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: status, headers: headers)
    }

    static func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    static func failureName(_ failure: ExchangeOutcome.Failure?) -> String {
        switch failure {
        case nil: "none"
        case .clientGoneDuringRequest: "clientGoneDuringRequest"
        case .clientGoneDuringResponse: "clientGoneDuringResponse"
        case .upstreamFailedBeforeResponse: "upstreamFailedBeforeResponse"
        case .upstreamBrokeResponse: "upstreamBrokeResponse"
        }
    }

    // MARK: Relaying

    @Test("the registry receives the admission's rewritten head, and the client gets the registry's head, body and end in order")
    func relaysRewrittenHeadAndResponse() throws {
        let h = try Harness()
        defer { h.tearDown() }
        let head = Self.request()
        try h.send(.head(head))
        try h.send(.end(nil))

        #expect(h.source.acquisitions == 1)
        let expectedHead = TestAdmission.rewritten(head)
        #expect(expectedHead != head, "the fixture's rewrite must change the head")
        #expect(try h.upstreamReceived() == [.head(expectedHead), .end(nil)])
        #expect(h.admission.clients.map(\.id) == ["1-1"])
        #expect(h.admission.clients.map(\.remoteAddress) == ["192.0.2.1"])

        let responseHead = Self.response(headers: ["Content-Length": "10", "Docker-Content-Digest": "sha256:abc"])
        try h.respond(.head(responseHead))
        #expect(try h.clientReceived() == [.head(responseHead)])
        try h.respond(.body(Self.buffer("0123456789")))
        try h.respond(.end(nil))
        #expect(try h.clientReceived() == [.body(.byteBuffer(Self.buffer("0123456789"))), .end(nil)])
        #expect(h.admission.admitted.first?.responseHeads == [responseHead])
        #expect(h.client.isActive, "a keep-alive exchange leaves the client connection open")
        #expect(h.collector.parts.isEmpty, "an admitted request does not reach the asynchronous handler")
    }

    @Test("request body buffers reach the registry unchanged and in order, response body buffers reach the client the same way, and the outcome counts both")
    func relaysBodiesAndCountsBytes() throws {
        let h = try Harness()
        defer { h.tearDown() }
        let requestChunks = ["first chunk ", "", "second, longer chunk of the blob ", "\u{0}\u{1}\u{2}tail"]
        try h.send(.head(Self.request(.PATCH, "/v2/library/alpine/blobs/uploads/abc", headers: ["Content-Length": "52"])))
        _ = try h.upstreamReceived()
        for chunk in requestChunks { try h.send(.body(Self.buffer(chunk))) }
        try h.send(.end(nil))
        let expectedUpstream: [HTTPClientRequestPart] = requestChunks.map { .body(.byteBuffer(Self.buffer($0))) } + [.end(nil)]
        #expect(try h.upstreamReceived() == expectedUpstream)

        let responseChunks = ["alpha-", "beta-", "gamma"]
        try h.respond(.head(Self.response(.accepted, headers: ["Content-Length": "16"])))
        for chunk in responseChunks { try h.respond(.body(Self.buffer(chunk))) }
        try h.respond(.end(nil))
        var expected: [HTTPServerResponsePart] = [.head(Self.response(.accepted, headers: ["Content-Length": "16"]))]
        expected += responseChunks.map { HTTPServerResponsePart.body(.byteBuffer(Self.buffer($0))) }
        expected.append(.end(nil))
        #expect(try h.clientReceived() == expected)

        #expect(h.outcomes.count == 1)
        let outcome = try #require(h.outcomes.first)
        #expect(outcome.bytesIn == requestChunks.map(\.utf8.count).reduce(0, +))
        #expect(outcome.bytesOut == responseChunks.map(\.utf8.count).reduce(0, +))
        #expect(outcome.status == 202)
        #expect(outcome.upstreamStatus == 202)
        #expect(outcome.completed)
        #expect(Self.failureName(outcome.failure) == "none")
        #expect(!outcome.closesConnection)
    }

    @Test("body parts that arrive while the upstream connection is still being made follow the head once it is ready, in order")
    func queuesBodyUntilConnected() throws {
        let h = try Harness()
        defer { h.tearDown() }
        h.source.deferred = true
        let head = Self.request(.PUT, "/v2/library/alpine/blobs/uploads/abc?digest=sha256:1", headers: ["Content-Length": "6"])
        try h.send(.head(head))
        try h.send(.body(Self.buffer("abc")))
        try h.send(.body(Self.buffer("def")))
        try h.send(.end(nil))
        #expect(try h.upstreamReceived().isEmpty, "nothing goes out before the connection is handed over")

        let (promise, connection) = try #require(h.source.pending.first)
        promise.succeed(connection)
        h.loop.run()
        #expect(
            try h.upstreamReceived()
                == [.head(TestAdmission.rewritten(head)), .body(.byteBuffer(Self.buffer("abc"))), .body(.byteBuffer(Self.buffer("def"))), .end(nil)])
        try h.respond(.head(Self.response(.created, headers: ["Content-Length": "0"])))
        try h.respond(.end(nil))
        #expect(try h.clientReceived() == [.head(Self.response(.created, headers: ["Content-Length": "0"])), .end(nil)])
        #expect(h.outcomes.first?.bytesIn == 6)
    }

    // MARK: Backpressure

    @Test("while the client cannot take more, a read on the upstream connection is held back after a response body part; it is issued once the client is writable again")
    func responseBackpressure() throws {
        let h = try Harness()
        defer { h.tearDown() }
        try h.send(.head(Self.request()))
        try h.send(.end(nil))
        let counter = h.source.counters[0]
        try h.respond(.head(Self.response(headers: ["Content-Length": "15"])))
        try h.respond(.body(Self.buffer("12345")))

        // Control: while the client is writable, reads reach the registry's side.
        var before = counter.reads
        h.upstream.read()
        #expect(counter.reads == before + 1, "a read passes while the client is writable")

        h.client.isWritable = false
        h.client.pipeline.fireChannelWritabilityChanged()
        try h.respond(.body(Self.buffer("67890")))
        before = counter.reads
        h.upstream.read()
        #expect(counter.reads == before, "the read is held while the client cannot take more")
        #expect(try h.clientReceived().count == 3, "the part that arrived is still handed to the client")

        h.client.isWritable = true
        h.client.pipeline.fireChannelWritabilityChanged()
        #expect(counter.reads == before + 1, "the held read is issued once the client is writable")

        try h.respond(.body(Self.buffer("abcde")))
        try h.respond(.end(nil))
        #expect(try h.clientReceived() == [.body(.byteBuffer(Self.buffer("abcde"))), .end(nil)])
        #expect(h.outcomes.first?.bytesOut == 15)
        #expect(h.source.releases.map(\.reusable) == [true])
    }

    @Test("while the upstream connection cannot take more, the client's read is held back during a request body; it is passed on once the upstream is writable")
    func requestBackpressure() throws {
        let h = try Harness()
        defer { h.tearDown() }
        try h.send(.head(Self.request(.PATCH, "/v2/library/alpine/blobs/uploads/abc", headers: ["Content-Length": "10"])))
        try h.send(.body(Self.buffer("01234")))

        // Control: while the upstream is writable, reads reach the client's side.
        var before = h.clientReads.reads
        h.client.read()
        #expect(h.clientReads.reads == before + 1, "a read passes while the upstream is writable")

        h.upstream.isWritable = false
        h.upstream.pipeline.fireChannelWritabilityChanged()
        before = h.clientReads.reads
        h.client.read()
        #expect(h.clientReads.reads == before, "the read is held while the upstream cannot take more")

        h.upstream.isWritable = true
        h.upstream.pipeline.fireChannelWritabilityChanged()
        #expect(h.clientReads.reads == before + 1, "the held read is passed on once the upstream is writable")

        try h.send(.body(Self.buffer("56789")))
        try h.send(.end(nil))
        #expect(
            try h.upstreamReceived()
                == [.head(TestAdmission.rewritten(Self.request(.PATCH, "/v2/library/alpine/blobs/uploads/abc", headers: ["Content-Length": "10"]))),
                    .body(.byteBuffer(Self.buffer("01234"))), .body(.byteBuffer(Self.buffer("56789"))), .end(nil)])
    }

    @Test("an upstream connection released while the client was not writable reads again for the next exchange that reuses it")
    func reusedConnectionAfterBackpressureReads() throws {
        let h = try Harness()
        defer { h.tearDown() }
        try h.send(.head(Self.request()))
        try h.send(.end(nil))
        let counter = h.source.counters[0]
        // The whole response arrives in one batch while the client's buffer is full.
        h.client.isWritable = false
        h.client.pipeline.fireChannelWritabilityChanged()
        try h.respond(.head(Self.response(headers: ["Content-Length": "5"])))
        try h.respond(.body(Self.buffer("12345")))
        try h.respond(.end(nil))
        #expect(h.source.releases.map(\.reusable) == [true])
        // The client drains.
        h.client.isWritable = true
        h.client.pipeline.fireChannelWritabilityChanged()
        _ = try h.clientReceived()

        // The next request reuses the connection; the registry's side must be read for its response.
        try h.send(.head(Self.request(.GET, "/v2/library/alpine/manifests/3.21")))
        try h.send(.end(nil))
        #expect(h.source.channels.count == 1, "the connection is reused")
        let before = counter.reads
        h.upstream.read()
        #expect(counter.reads == before + 1, "a read on the reused connection reaches the registry's side")
    }

    // MARK: Early closes

    @Test("a client that closes during the response closes the upstream connection, never released as reusable, and the outcome says clientGoneDuringResponse")
    func clientGoneDuringResponse() throws {
        let h = try Harness()
        defer { h.tearDown() }
        try h.send(.head(Self.request()))
        try h.send(.end(nil))
        try h.respond(.head(Self.response(headers: ["Content-Length": "100"])))
        try h.respond(.body(Self.buffer("partial")))
        #expect(h.upstream.isActive)

        h.client.close(promise: nil)
        h.loop.run()
        #expect(!h.upstream.isActive, "the upstream connection is closed")
        #expect(!h.source.releases.contains { $0.reusable }, "it is never released as reusable")
        #expect(h.source.idle.isEmpty)
        #expect(h.outcomes.count == 1)
        let outcome = try #require(h.outcomes.first)
        #expect(Self.failureName(outcome.failure) == "clientGoneDuringResponse")
        #expect(outcome.closesConnection)
        #expect(!outcome.completed)
        #expect(outcome.bytesOut == 7)
    }

    @Test("a client that closes before its request body ended closes the upstream connection, and the outcome says clientGoneDuringRequest")
    func clientGoneDuringRequest() throws {
        let h = try Harness()
        defer { h.tearDown() }
        try h.send(.head(Self.request(.PATCH, "/v2/library/alpine/blobs/uploads/abc", headers: ["Content-Length": "100"])))
        try h.send(.body(Self.buffer("part of the body")))
        #expect(h.upstream.isActive)

        h.client.close(promise: nil)
        h.loop.run()
        #expect(!h.upstream.isActive, "the upstream connection is closed")
        #expect(!h.source.releases.contains { $0.reusable })
        let outcome = try #require(h.outcomes.first)
        #expect(h.outcomes.count == 1)
        #expect(Self.failureName(outcome.failure) == "clientGoneDuringRequest")
        #expect(outcome.bytesIn == 16)
    }

    @Test("a registry that closes after its response head closes the client connection, and the outcome says upstreamBrokeResponse")
    func upstreamBrokeResponse() throws {
        let h = try Harness()
        defer { h.tearDown() }
        try h.send(.head(Self.request()))
        try h.send(.end(nil))
        try h.respond(.head(Self.response(headers: ["Content-Length": "100"])))
        try h.respond(.body(Self.buffer("partial")))
        #expect(try h.clientReceived() == [.head(Self.response(headers: ["Content-Length": "100"])), .body(.byteBuffer(Self.buffer("partial")))])

        h.upstream.close(promise: nil)
        h.loop.run()
        #expect(!h.client.isActive, "the client learns of the break by the close")
        #expect(try h.clientReceived().isEmpty, "no end is sent for a broken response")
        #expect(!h.source.releases.contains { $0.reusable })
        let outcome = try #require(h.outcomes.first)
        #expect(h.outcomes.count == 1)
        #expect(Self.failureName(outcome.failure) == "upstreamBrokeResponse")
        #expect(outcome.closesConnection)
        #expect(!outcome.completed)
    }

    @Test("a registry that closes before any response has the client answered with the request's 503")
    func upstreamClosedBeforeResponse() throws {
        let h = try Harness()
        defer { h.tearDown() }
        try h.send(.head(Self.request()))
        try h.send(.end(nil))

        h.upstream.close(promise: nil)
        h.loop.run()
        let parts = try h.clientReceived()
        #expect(parts.count == 3)
        guard parts.count == 3, case .head(let head) = parts[0] else { return }
        #expect(head.status == .serviceUnavailable)
        #expect(head.headers["Content-Length"] == [String(TestRequest.unavailableBody.count)])
        #expect(head.headers["Content-Type"] == ["text/plain"])
        #expect(parts[1] == .body(.byteBuffer(ByteBuffer(bytes: TestRequest.unavailableBody))))
        #expect(parts[2] == .end(nil))
        #expect(h.admission.admitted.first?.upstreamErrors.count == 1)
        let outcome = try #require(h.outcomes.first)
        #expect(Self.failureName(outcome.failure) == "upstreamFailedBeforeResponse")
        #expect(outcome.status == 503)
        #expect(outcome.upstreamStatus == 0)
        #expect(h.client.isActive, "the request had ended: the client connection stays open")
    }

    @Test("a failed connection attempt has the client answered with the request's 503")
    func connectFailureAnswers503() throws {
        let h = try Harness()
        defer { h.tearDown() }
        h.source.failNext = Unreachable()
        try h.send(.head(Self.request()))
        try h.send(.end(nil))
        let parts = try h.clientReceived()
        guard case .head(let head)? = parts.first else {
            Issue.record("no response head: \(parts)")
            return
        }
        #expect(head.status == .serviceUnavailable)
        #expect(parts.last == .end(nil))
        #expect(Self.failureName(h.outcomes.first?.failure) == "upstreamFailedBeforeResponse")
        #expect(h.admission.admitted.first?.upstreamErrors.first is Unreachable)
    }

    @Test("a response head the request answers itself replaces the registry's response, whose connection is closed")
    func answeredResponseHead() throws {
        let h = try Harness()
        defer { h.tearDown() }
        h.admission.configure = { request in
            request.decide = { _ in .answer(LocalResponse(status: .forbidden, headers: [:], body: Array("denied".utf8))) }
        }
        try h.send(.head(Self.request()))
        try h.send(.end(nil))
        try h.respond(.head(Self.response(headers: ["Content-Length": "6"])))
        let parts = try h.clientReceived()
        #expect(parts.count == 3)
        if case .head(let head)? = parts.first {
            #expect(head.status == .forbidden)
            #expect(head.headers["Content-Length"] == ["6"])
        } else {
            Issue.record("no response head: \(parts)")
        }
        #expect(parts.dropFirst().first == .body(.byteBuffer(Self.buffer("denied"))))
        #expect(!h.upstream.isActive, "the registry's connection is closed")
        #expect(!h.source.releases.contains { $0.reusable })
        #expect(h.outcomes.first?.status == 403)
        #expect(h.outcomes.first?.upstreamStatus == 200)
        #expect(h.client.isActive)
    }

    // MARK: Reuse

    @Test("after a complete keep-alive exchange the upstream connection is released as reusable and the next request on the client connection reuses it")
    func reusesConnectionAfterCompleteExchange() throws {
        let h = try Harness()
        defer { h.tearDown() }
        try h.send(.head(Self.request()))
        try h.send(.end(nil))
        try h.respond(.head(Self.response(headers: ["Content-Length": "2"])))
        try h.respond(.body(Self.buffer("ok")))
        #expect(h.source.releases.isEmpty, "nothing is released before the response ends")
        try h.respond(.end(nil))
        #expect(h.source.releases.count == 1)
        #expect(h.source.releases.first?.reusable == true)
        #expect(h.source.releases.first?.connection === h.source.connections.first)
        _ = try h.upstreamReceived()
        _ = try h.clientReceived()

        let second = Self.request(.HEAD, "/v2/library/alpine/manifests/3.21")
        try h.send(.head(second))
        try h.send(.end(nil))
        #expect(h.source.acquisitions == 2)
        #expect(h.source.channels.count == 1, "no second connection is made")
        #expect(try h.upstreamReceived() == [.head(TestAdmission.rewritten(second)), .end(nil)])
        #expect(h.admission.clients.map(\.id) == ["1-1", "1-2"])
        try h.respond(.head(Self.response(headers: ["Content-Length": "1234"])))
        try h.respond(.end(nil))
        #expect(try h.clientReceived() == [.head(Self.response(headers: ["Content-Length": "1234"])), .end(nil)])
        #expect(h.source.releases.map(\.reusable) == [true, true])
        #expect(h.source.releases.allSatisfy { $0.connection === h.source.connections.first })
        #expect(h.outcomes.map(\.completed) == [true, true])
    }

    @Test("after a response with Connection: close the upstream connection is not reusable, and the next request gets a new one")
    func connectionCloseIsNotReused() throws {
        let h = try Harness()
        defer { h.tearDown() }
        try h.send(.head(Self.request()))
        try h.send(.end(nil))
        try h.respond(.head(Self.response(headers: ["Content-Length": "2", "Connection": "close"])))
        try h.respond(.body(Self.buffer("ok")))
        try h.respond(.end(nil))
        #expect(h.source.releases.map(\.reusable) == [false])
        #expect(!h.upstream.isActive)
        #expect(h.outcomes.first?.completed == true)

        try h.send(.head(Self.request()))
        try h.send(.end(nil))
        #expect(h.source.channels.count == 2, "a new connection is made")
        #expect(try h.upstreamReceived(on: 1).first == .head(TestAdmission.rewritten(Self.request())))
    }

    @Test("an upstream connection whose request body had not ended when the response did is not reusable")
    func unfinishedRequestIsNotReused() throws {
        let h = try Harness()
        defer { h.tearDown() }
        try h.send(.head(Self.request(.PATCH, "/v2/library/alpine/blobs/uploads/abc", headers: ["Content-Length": "100"])))
        try h.send(.body(Self.buffer("some")))
        try h.respond(.head(Self.response(.unauthorized, headers: ["Content-Length": "0"])))
        try h.respond(.end(nil))
        #expect(h.source.releases.map(\.reusable) == [false])
        #expect(!h.client.isActive, "the rest of the body cannot be read as a next request: the client connection closes")
    }

    // MARK: Hand-off

    @Test("a request the admission does not take passes through unchanged to the next handler, and the handler forwards again once its response has ended")
    func handsOffUnadmittedRequests() throws {
        let h = try Harness()
        defer { h.tearDown() }
        h.admission.handOff = { $0.uri == "/token" }
        let head = Self.request(.POST, "/token", headers: ["Content-Length": "4"])
        try h.send(.head(head))
        try h.send(.body(Self.buffer("a=b&")))
        try h.send(.end(nil))
        #expect(h.collector.parts == [.head(head), .body(Self.buffer("a=b&")), .end(nil)])
        #expect(h.source.acquisitions == 0)
        #expect(h.admission.admitted.isEmpty)

        // The asynchronous handler answers; its response passes through.
        let answer = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "2"])
        try h.client.writeOutbound(HTTPServerResponsePart.head(answer))
        try h.client.writeOutbound(HTTPServerResponsePart.body(.byteBuffer(Self.buffer("{}"))))
        try h.client.writeOutbound(HTTPServerResponsePart.end(nil))
        #expect(try h.clientReceived() == [.head(answer), .body(.byteBuffer(Self.buffer("{}"))), .end(nil)])

        // The next request is admitted here again.
        let next = Self.request()
        try h.send(.head(next))
        try h.send(.end(nil))
        #expect(h.collector.parts.count == 3, "the admitted request does not pass through")
        #expect(h.source.acquisitions == 1)
        #expect(try h.upstreamReceived() == [.head(TestAdmission.rewritten(next)), .end(nil)])
        #expect(h.admission.clients.map(\.id) == ["1-1", "1-2"])
    }

    @Test("a request the admission answers at once gets that response with its Content-Length, reaches neither the registry nor the next handler, and the connection serves the next request")
    func answersAtOnce() throws {
        let h = try Harness()
        defer { h.tearDown() }
        h.admission.answer = { $0.uri.hasPrefix("/token") ? LocalResponse(status: .ok, headers: ["content-type": "application/json"], body: Array(#"{"token":"t"}"#.utf8)) : nil }
        try h.send(.head(Self.request(.GET, "/token?service=registry")))
        try h.send(.end(nil))
        let parts = try h.clientReceived()
        #expect(parts.count == 3)
        if case .head(let head)? = parts.first {
            #expect(head.status == .ok)
            #expect(head.headers["content-length"] == ["13"])
        } else {
            Issue.record("no response head: \(parts)")
        }
        #expect(parts.dropFirst().first == .body(.byteBuffer(Self.buffer(#"{"token":"t"}"#))))
        #expect(h.source.acquisitions == 0)
        #expect(h.collector.parts.isEmpty)
        #expect(h.client.isActive)

        let next = Self.request()
        try h.send(.head(next))
        try h.send(.end(nil))
        #expect(try h.upstreamReceived() == [.head(TestAdmission.rewritten(next)), .end(nil)])
    }
}
