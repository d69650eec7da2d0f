import NIOCore
import Synchronization

/// The open client connections, so that a graceful shutdown can close the idle ones at once
/// and let the busy ones finish their current request.
final class ConnectionTracker: Sendable {
    private struct Entry {
        let channel: any Channel
        /// Requests in flight (HTTP/2 connections carry several).
        var busy: Int
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

    /// Forgets a connection.
    func closed(_ id: Int) {
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }

    /// Counts a request starting (`true`) or ending (`false`) on a connection.
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

    /// Begins a graceful shutdown: idle connections are closed now, busy ones after their response.
    func beginShutdown() {
        let idle = state.withLock { state -> [any Channel] in
            state.shuttingDown = true
            return state.entries.values.filter { $0.busy == 0 }.map(\.channel)
        }
        for channel in idle { channel.close(promise: nil) }
    }
}
