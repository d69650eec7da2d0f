import Foundation
import Logging
import Policy
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Appends a ``PushRecord`` line to `retention.push_times` for every manifest push the registry
/// accepted through Portcullis.
///
/// Each line goes out in one `write(2)` on a descriptor opened with `O_APPEND`, so lines from
/// several Portcullis processes sharing the file do not interleave. The file follows the
/// configuration: a reload that names another file switches to it.
final class PushTimeRecorder: Sendable {
    private struct Open {
        var path: String
        var descriptor: Int32
    }

    private let file = Mutex<Open?>(nil)
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    deinit {
        file.withLock { if let open = $0 { close(open.descriptor) } }
    }

    /// Records `record` in the file at `path`; a failure is logged, never thrown: the push itself
    /// succeeded.
    func record(_ record: PushRecord, to path: String) {
        let line = Array((record.jsonLine + "\n").utf8)
        let failure: String? = file.withLock { open in
            if open?.path != path {
                if let previous = open { close(previous.descriptor) }
                let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
                guard descriptor >= 0 else {
                    open = nil
                    return "cannot open: \(String(cString: strerror(errno)))"
                }
                open = Open(path: path, descriptor: descriptor)
            }
            let written = line.withUnsafeBytes { write(open!.descriptor, $0.baseAddress, $0.count) }
            return written == line.count ? nil : "write failed: \(String(cString: strerror(errno)))"
        }
        if let failure {
            logger.error(
                "push time not recorded (retention.push_times): prune will treat this image's time as unknown if its config has none",
                metadata: ["file": "\(path)", "reason": "\(failure)", "repository": "\(record.repository)", "digest": "\(record.digest)"])
        }
    }
}
