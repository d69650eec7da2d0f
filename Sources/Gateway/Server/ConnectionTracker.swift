import NIOCore
import Synchronization

/// The open client connections, so that a graceful shutdown can close the idle ones at once
/// and let the busy ones finish.
///
/// An HTTP/1.1 connection carries one request at a time: it counts as busy from a request's
/// head to the end of its response (``setBusy(_:_:)``), and a shutdown closes it as soon as it is
/// idle. An HTTP/2 connection keeps its own count of open streams: once negotiated it is handed
/// a `quiesce` action (``servesHTTP2(_:quiesce:)``), which a shutdown calls so that the
/// connection says GOAWAY, lets its streams in flight finish and then closes.
final class ConnectionTracker: Sendable {
    private struct Entry {
        let channel: any Channel
        /// HTTP/1.1 requests in flight (0 or 1).
        var busy: Int
        /// Set once the connection speaks HTTP/2: begins its graceful close.
        var quiesce: (@Sendable () -> Void)?
    }

    private struct State {
        var entries: [Int: Entry] = [:]
        var shuttingDown = false
    }

    private let state = Mutex(State())

    /// Whether a graceful shutdown has begun: connections close after their current response.
    var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    /// How many client connections are open.
    var openCount: Int { state.withLock { $0.entries.count } }

    /// Registers a connection; returns `false` (close it) when shutting down already.
    func opened(_ id: Int, channel: any Channel) -> Bool {
        state.withLock { state in
            guard !state.shuttingDown else { return false }
            state.entries[id] = Entry(channel: channel, busy: 0)
            return true
        }
    }

    /// Marks a connection as HTTP/2: a shutdown calls `quiesce` instead of counting requests.
    /// If the shutdown has begun already, `quiesce` is called now.
    func servesHTTP2(_ id: Int, quiesce: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            state.entries[id]?.quiesce = quiesce
            return state.shuttingDown
        }
        if now { quiesce() }
    }

    /// Forgets a connection.
    func closed(_ id: Int) {
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }

    /// Counts an HTTP/1.1 request starting (`true`) or ending (`false`) on a connection.
    /// - Returns: `false` when the connection went idle during a shutdown and must close now.
    @discardableResult
    func setBusy(_ id: Int, _ busy: Bool) -> Bool {
        state.withLock { state in
            state.entries[id]?.busy += busy ? 1 : -1
            return busy || !state.shuttingDown || (state.entries[id]?.busy ?? 0) > 0
        }
    }

    /// Closes every connection, busy or not: the shutdown grace period is over.
    func closeAll() {
        let all = state.withLock { state -> [any Channel] in
            state.shuttingDown = true
            return state.entries.values.map(\.channel)
        }
        for channel in all { channel.close(promise: nil) }
    }

    /// Begins a graceful shutdown: idle HTTP/1.1 connections (and those still negotiating) are
    /// closed now, busy ones after their response; HTTP/2 connections are quiesced.
    func beginShutdown() {
        let (idle, quiescing) = state.withLock { state -> ([any Channel], [@Sendable () -> Void]) in
            state.shuttingDown = true
            var idle: [any Channel] = []
            var quiescing: [@Sendable () -> Void] = []
            for entry in state.entries.values {
                if let quiesce = entry.quiesce {
                    quiescing.append(quiesce)
                } else if entry.busy == 0 {
                    idle.append(entry.channel)
                }
            }
            return (idle, quiescing)
        }
        for channel in idle { channel.close(promise: nil) }
        for quiesce in quiescing { quiesce() }
    }
}
