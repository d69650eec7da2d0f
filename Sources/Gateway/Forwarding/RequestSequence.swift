import Synchronization

/// The requests of one connection: their numbers, and the ids and client addresses of those
/// handed from the ``ForwardingHandler`` to the asynchronous handler, in order.
final class RequestSequence: Sendable {
    private let counter = Atomic<Int>(0)
    private let handedOff = Mutex<[(id: String, remoteAddress: String)]>([])

    init() {}

    /// The next request number (from 1).
    func next() -> Int {
        counter.add(1, ordering: .relaxed).newValue
    }

    /// Records a request handed to the asynchronous handler.
    func handOff(id: String, remoteAddress: String) {
        handedOff.withLock { $0.append((id, remoteAddress)) }
    }

    /// The oldest handed-off request not yet taken, if any.
    func takeHandedOff() -> (id: String, remoteAddress: String)? {
        handedOff.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }
}
