import Foundation
import Policy

/// State kept by the endpoints Portcullis answers itself instead of the registry.
final class LocalEndpoints: Sendable {
    init() {}
}

extension ProxyHandler {
    /// Answers an authorized request without the registry when Portcullis serves it itself.
    /// - Returns: whether the request was answered.
    func answerLocally(
        _ request: IncomingRequest, scopes: [Scope], account: String, state: GatewayState, writer: ResponseWriter, log: inout RequestLog
    ) async throws -> Bool {
        false
    }

    /// Called after the registry answered a forwarded request with `status`.
    func didForward(_ request: IncomingRequest, status: Int, state: GatewayState) {}
}
