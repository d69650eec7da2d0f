import Dispatch
import Foundation
import Logging
import Policy
import PortcullisConfiguration
import Synchronization

/// Re-reads the configuration and every file it names when one of them changes, or on SIGHUP.
///
/// A valid new version replaces the state for requests that start afterwards; requests in
/// flight keep the state they started with. An invalid version is refused with an error log
/// and the old one stays in force.
final class ConfigurationReloader: Sendable {
    private let path: String
    private let holder: StateHolder
    private let logger: Logger
    private let fingerprints = Mutex<[String: String]>([:])
    /// The robots of the postgres state store, read at every reload; `nil` with the embedded store.
    private let robots: @Sendable () -> [RobotCredential]?

    init(path: String, holder: StateHolder, logger: Logger, robots: @escaping @Sendable () -> [RobotCredential]? = { nil }) {
        self.path = path
        self.holder = holder
        self.logger = logger
        self.robots = robots
        fingerprints.withLock { $0 = Self.fingerprints(of: holder.current.watchedFiles) }
    }

    /// Polls the watched files every `interval` and reloads on SIGHUP, until cancelled.
    func run(interval: Duration = .seconds(1)) async {
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        signal(SIGHUP, SIG_IGN)
        hangup.setEventHandler { [self] in _ = self.reload(reason: "SIGHUP") }
        hangup.resume()
        defer { hangup.cancel() }
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            _ = reloadIfChanged(reason: "file changed")
        }
    }

    /// Reloads now if a watched file changed since the last load, without waiting for the next
    /// poll: a login by an account that does not exist yet asks, so that a robot created a
    /// moment ago works at its first login instead of counting failures toward its throttle.
    /// - Returns: the state in force afterwards, or `nil` when nothing changed or the change
    ///   was refused.
    func reloadIfChanged(reason: String) -> GatewayState? {
        let current = Self.fingerprints(of: holder.current.watchedFiles)
        guard fingerprints.withLock({ $0 != current }) else { return nil }
        return reload(reason: reason) ? holder.current : nil
    }

    /// Loads the configuration again and swaps it in if it is valid.
    /// - Returns: whether the new version is in force.
    @discardableResult
    func reload(reason: String) -> Bool {
        do {
            let old = holder.current
            // After a key rotation, tokens signed with the previous key stay valid until they expire.
            let carried = old.ownKeys.prefix(4)
            let state = try GatewayState.load(try ConfigurationLoader.load(path: path), previousKeys: Array(carried), robots: robots())
            if state.signingKey.publicKey != old.signingKey.publicKey {
                logger.notice(
                    "signing key rotated; tokens signed with the previous key stay valid until they expire",
                    metadata: ["new_key": "\(state.signingKey.identifiers.rfc7638)", "previous_key": "\(old.signingKey.identifiers.rfc7638)"])
            }
            holder.replace(with: state)
            fingerprints.withLock { $0 = Self.fingerprints(of: state.watchedFiles) }
            logger.notice("configuration reloaded", metadata: ["reason": "\(reason)", "rules": "\(state.configuration.rules.count)"])
            return true
        } catch {
            // Remember what was seen so a broken file is reported once, not every second.
            let seen = Self.fingerprints(of: holder.current.watchedFiles)
            fingerprints.withLock { $0 = seen }
            logger.error(
                "configuration change refused; the previous configuration stays in force",
                metadata: ["reason": "\(reason)", "problems": "\(error)"])
            return false
        }
    }

    /// Modification time, size and inode of each file (a missing file has an empty fingerprint).
    static func fingerprints(of files: [String]) -> [String: String] {
        var result: [String: String] = [:]
        for file in files {
            var info = stat()
            if stat(file, &info) == 0 {
                result[file] = "\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec):\(info.st_size):\(info.st_ino)"
            } else {
                result[file] = ""
            }
        }
        return result
    }
}
