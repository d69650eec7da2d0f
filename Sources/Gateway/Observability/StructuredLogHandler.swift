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

        func write(_ line: String) {
            var bytes = Array(line.utf8)
            bytes.append(0x0A)
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
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let time = Self.timestamp()
        switch format {
        case .json:
            var object: [String: Any] = ["time": time, "level": event.level.rawValue, "logger": label, "message": event.message.description]
            for (key, value) in merged { object[key] = Self.json(value) }
            if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
                sink.write(String(decoding: data, as: UTF8.self))
            }
        case .logfmt:
            var line = "time=\(time) level=\(event.level.rawValue) logger=\(Self.quote(label)) msg=\(Self.quote(event.message.description))"
            for key in merged.keys.sorted() {
                line += " \(key)=\(Self.quote(merged[key]!.description))"
            }
            sink.write(line)
        }
    }

    private static func json(_ value: Logger.MetadataValue) -> Any {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array(let array): array.map(json)
        case .dictionary(let dictionary): dictionary.mapValues(json)
        }
    }

    private static func quote(_ text: String) -> String {
        if !text.isEmpty, !text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\n" || $0 == "\\" }) { return text }
        return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(now.tv_nsec / 1_000_000))
    }
}
