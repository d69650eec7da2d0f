import NIOCore
import NIOHTTP1
import Synchronization

/// The inbound side of one HTTP/1.1 connection, shared between the connection loop (which reads
/// request heads) and the request body currently being consumed (which reads body parts).
///
/// Only one party reads at a time: the connection loop waits until the handler of the current
/// request has returned, and never reads again if that request's body was left unfinished.
final class InboundRequestStream: @unchecked Sendable {
    // The iterator is not Sendable; access is serialised by the protocol described above and
    // guarded by the lock for the state flag.
    private var iterator: NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator
    private let state = Mutex<BodyState>(.idle)

    /// Where the current request's body stands.
    enum BodyState: Sendable, Equatable {
        /// No request is being read.
        case idle
        /// Body parts may still arrive.
        case streaming
        /// `.end` was read.
        case finished
        /// Reading failed (client went away or sent garbage).
        case failed
    }

    init(_ inbound: NIOAsyncChannelInboundStream<HTTPServerRequestPart>) {
        self.iterator = inbound.makeAsyncIterator()
    }

    /// The next request head, or `nil` when the client closed the connection.
    /// - Throws: when the client sends something other than a head between requests.
    func nextHead() async throws -> HTTPRequestHead? {
        guard let part = try await iterator.next() else { return nil }
        guard case .head(let head) = part else {
            throw HTTPServerProtocolViolation(message: "expected a request head")
        }
        state.withLock { $0 = .streaming }
        return head
    }

    private let bodyBytes = Atomic<Int>(0)

    /// Body bytes read for the current request.
    var bodyBytesRead: Int { bodyBytes.load(ordering: .relaxed) }

    /// The next body part of the current request, `nil` after its end.
    func nextBodyPart() async throws -> ByteBuffer? {
        guard state.withLock({ $0 }) == .streaming else { return nil }
        do {
            switch try await iterator.next() {
            case .body(let buffer):
                bodyBytes.add(buffer.readableBytes, ordering: .relaxed)
                return buffer
            case .end:
                state.withLock { $0 = .finished }
                return nil
            case .head, .none:
                state.withLock { $0 = .failed }
                throw HTTPServerProtocolViolation(message: "request body ended early")
            }
        } catch {
            state.withLock { $0 = .failed }
            throw error
        }
    }

    /// Where the current request's body stands.
    var bodyState: BodyState { state.withLock { $0 } }

    private let consumerStarted = Mutex(false)

    /// Whether a consumer (such as the upstream client) started reading the current body.
    /// Such a consumer may still be reading, so the connection loop must not read after it.
    var bodyConsumerStarted: Bool { consumerStarted.withLock { $0 } }

    func markConsumerStarted() { consumerStarted.withLock { $0 = true } }

    func resetForNextRequest() {
        consumerStarted.withLock { $0 = false }
        bodyBytes.store(0, ordering: .relaxed)
    }

    /// Reads and discards the rest of a body of at most `limit` bytes.
    /// - Returns: whether the body was finished; `false` means the connection must close.
    func discardBody(limit: Int) async -> Bool {
        var remaining = limit
        while bodyState == .streaming {
            guard let part = try? await nextBodyPart() else { break }
            remaining -= part.readableBytes
            if remaining < 0 { return false }
        }
        return bodyState == .finished
    }
}

/// A request body as an async sequence of buffers, read straight off the connection so that
/// backpressure reaches the client.
struct RequestBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let stream: InboundRequestStream

    struct AsyncIterator: AsyncIteratorProtocol {
        let stream: InboundRequestStream
        mutating func next() async throws -> ByteBuffer? {
            try await stream.nextBodyPart()
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        stream.markConsumerStarted()
        return AsyncIterator(stream: stream)
    }
}

/// The client broke HTTP framing.
struct HTTPServerProtocolViolation: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
