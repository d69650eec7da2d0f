import NIOCore

/// A request body read whole before it is forwarded (a manifest whose digest a content rule
/// needs), relayed as the one buffer it is.
struct BufferedRequestBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let buffer: ByteBuffer

    struct AsyncIterator: AsyncIteratorProtocol {
        var buffer: ByteBuffer?
        mutating func next() async throws -> ByteBuffer? {
            defer { buffer = nil }
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(buffer: buffer.readableBytes > 0 ? buffer : nil)
    }
}
