import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Writes each log event as one line, in JSON or logfmt, to a file descriptor.
///
/// Lines are written with a single `write(2)` under a lock, so concurrent events never
/// interleave.
struct StructuredLogHandler: LogHandler {
    /// The line format.
    enum Format: String, Sendable {
        case json
        case logfmt
    }

    /// Where lines go: shared by every handler writing to the same destination.
    final class Sink: Sendable {
        private let descriptor: Int32
        private let lock = Mutex(())

        init(descriptor: Int32) {
            self.descriptor = descriptor
        }

        /// Opens `path` for appending (`stdout` and `stderr` name the standard streams).
        static func open(_ path: String) throws -> Sink {
            switch path {
            case "stdout": return Sink(descriptor: STDOUT_FILENO)
            case "stderr": return Sink(descriptor: STDERR_FILENO)
            default:
                let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
                guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                return Sink(descriptor: descriptor)
            }
        }

        /// Writes a whole line (with its newline) in one `write(2)`.
        func write(_ bytes: [UInt8]) {
            lock.withLock { _ in
                var offset = 0
                while offset < bytes.count {
                    let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                    if written <= 0 { break }
                    offset += written
                }
            }
        }
    }

    let label: String
    let format: Format
    let sink: Sink
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, format: Format, sink: Sink, level: Logger.Level) {
        self.label = label
        self.format = format
        self.sink = sink
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        // Most events carry all their metadata themselves: no dictionary is copied for them.
        var merged = metadata.isEmpty && metadataProvider == nil ? (event.metadata ?? [:]) : metadata
        if !metadata.isEmpty || metadataProvider != nil {
            if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
            if let extra = event.metadata { merged.merge(extra) { $1 } }
        }
        sink.write(
            LogLineEncoder.line(
                format: format, time: InternetTime.nowWithMilliseconds(), level: event.level, label: label, message: event.message.description,
                metadata: merged))
    }
}
