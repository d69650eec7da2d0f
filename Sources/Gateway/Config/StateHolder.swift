import Synchronization

/// The current ``GatewayState``, swapped whole when the configuration is reloaded.
final class StateHolder: Sendable {
    private let state: Mutex<GatewayState>

    init(_ state: GatewayState) {
        self.state = Mutex(state)
    }

    /// The state new requests are decided with.
    var current: GatewayState { state.withLock { $0 } }

    /// Replaces the state for requests that start from now on.
    func replace(with newState: GatewayState) {
        state.withLock { $0 = newState }
    }
}
