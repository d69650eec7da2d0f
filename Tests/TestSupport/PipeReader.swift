import Foundation

/// Reads a pipe to its end on a thread of its own, then closes it.
public final class PipeReader: @unchecked Sendable {
    private let done = DispatchGroup()
    // Written once by the reading thread before `done` is left; read only after it.
    private var data = Data()

    /// Starts reading `handle`.
    public init(_ handle: FileHandle) {
        done.enter()
        Thread.detachNewThread { [self] in
            let bytes = handle.readDataToEndOfFile()
            try? handle.close()
            data = bytes
            done.leave()
        }
    }

    /// Blocks the calling thread until the end of the stream and returns everything read.
    public func wait() -> Data {
        done.wait()
        return data
    }

    /// Suspends the caller, without holding a thread, until the end of the stream.
    public func contents() async -> Data {
        await withCheckedContinuation { continuation in
            done.notify(queue: .global()) { [self] in continuation.resume(returning: data) }
        }
    }
}
