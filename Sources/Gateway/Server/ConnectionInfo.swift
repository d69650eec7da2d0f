import Synchronization

/// The addresses a PROXY protocol header (v1 or v2) announced for a connection.
final class ConnectionInfo: Sendable {
    private let announced = Mutex<String?>(nil)

    /// The original client address from the PROXY header, if one was received.
    var proxiedClientAddress: String? { announced.withLock { $0 } }

    func setProxiedClientAddress(_ address: String?) {
        announced.withLock { $0 = address }
    }
}
