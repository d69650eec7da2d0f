import NIOCore
import NIOEmbedded
import Testing

@testable import Gateway

/// h2c detection on a plain listener, byte by byte.
@Suite("HTTP/2 prior-knowledge detection")
struct HTTP2PriorKnowledgeDetectorTests {
    enum Chosen: Sendable, Equatable { case http1, http2 }

    /// Collects what reaches the pipeline behind the detector.
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var received: [UInt8] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += Array(buffer: unwrapInboundIn(data))
        }
    }

    /// Feeds `chunks` and returns the decision (nil while undecided) and the bytes passed on.
    func feed(_ chunks: [String]) throws -> (Chosen?, [UInt8], Bool) {
        let channel = EmbeddedChannel()
        let collector = Collector()
        let configure = { (chosen: Chosen) in
            { (channel: any Channel) -> EventLoopFuture<Chosen> in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector); return chosen }
            }
        }
        let detector = HTTP2PriorKnowledgeDetector<Chosen>(eventLoop: channel.eventLoop, http1: configure(.http1), http2: configure(.http2))
        try channel.pipeline.syncOperations.addHandler(detector)
        var decided: Chosen?
        detector.result.whenSuccess { decided = $0 }
        for chunk in chunks { try channel.writeInbound(ByteBuffer(string: chunk)) }
        channel.embeddedEventLoop.run()
        let detectorStillThere = (try? channel.pipeline.syncOperations.context(handlerType: HTTP2PriorKnowledgeDetector<Chosen>.self)) != nil
        _ = try? channel.finish()
        return (decided, collector.received, detectorStillThere)
    }

    static let preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    @Test("the preface, whole or split anywhere, chooses HTTP/2 and every byte reaches the HTTP/2 pipeline", arguments: [1, 5, 23, 24])
    func prefaceChoosesHTTP2(_ split: Int) throws {
        let bytes = Self.preface + "\u{0}\u{0}\u{0}\u{4}"
        let (chosen, received, stillThere) = try feed([String(bytes.prefix(split)), String(bytes.dropFirst(split))])
        #expect(chosen == .http2)
        #expect(received == Array(bytes.utf8))
        #expect(!stillThere)
    }

    @Test("anything else chooses HTTP/1.1 as soon as it differs, a PRI request line included", arguments: [
        "GET /v2/ HTTP/1.1\r\n", "P", "PRI * HTTP/1.1\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nXX",
    ])
    func otherBytesChooseHTTP1(_ text: String) throws {
        let (chosen, received, _) = try feed([text])
        if text == "P" {
            #expect(chosen == nil, "one byte of the preface decides nothing")
            #expect(received.isEmpty)
        } else {
            #expect(chosen == .http1)
            #expect(received == Array(text.utf8))
        }
    }
}
