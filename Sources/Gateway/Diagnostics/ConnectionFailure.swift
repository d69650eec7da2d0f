import AsyncHTTPClient
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Words for why a connection to the registry failed, for doctor, `/readyz`, the logs and the
/// error bodies: `connection refused` rather than NIO's
/// `connection reset (error set): Connection refused (errno: 111)`.
enum ConnectionFailure {
    /// `error` as a short phrase (lower case, no errno number).
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as IOError:
            return describe(errno: error.errnoCode)
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return describe(first.error) }
            if let dns = error.dnsAError ?? error.dnsAAAAError { return "name resolution failed: \(describe(dns))" }
            return "no address to connect to"
        case let error as ChannelError:
            if case .connectTimeout(let timeout) = error { return "connection timed out after \(timeout.nanoseconds / 1_000_000) ms" }
            if case .ioOnClosedChannel = error { return "the connection was closed" }
            return "\(error)"
        case let error as HTTPClientError:
            if error == .connectTimeout { return "connection timed out" }
            if error == .readTimeout { return "no answer in time" }
            if error == .remoteConnectionClosed { return "the registry closed the connection" }
            return "\(error)"
        default:
            return "\(error)"
        }
    }

    /// The phrase for a socket error number.
    static func describe(errno code: CInt) -> String {
        switch code {
        case ECONNREFUSED: return "connection refused"
        case ECONNRESET: return "connection reset"
        case ETIMEDOUT: return "connection timed out"
        case EHOSTUNREACH: return "host unreachable"
        case ENETUNREACH: return "network unreachable"
        case EPIPE: return "the connection was closed"
        default: return String(cString: strerror(code)).lowercased()
        }
    }
}
