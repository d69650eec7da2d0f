import Logging

/// The audit stream: one JSON line for every push, delete, denied request and token issuance.
///
/// It never carries a secret or a token: only who, from where, what, and the outcome.
struct AuditLog: Sendable {
    /// The logger whose handler writes the audit destination.
    let logger: Logger

    /// A token was issued.
    func tokenIssued(account: String, peer: String, granted: String, refreshToken: Bool, requestID: String) {
        logger.info(
            "token issued",
            metadata: [
                "event": "token", "account": "\(account)", "peer": "\(peer)", "granted": "\(granted)", "refresh_token": "\(refreshToken)",
                "request": "\(requestID)",
            ])
    }

    /// A write (manifest or blob) or delete reached the registry and succeeded.
    func change(event: String, account: String, peer: String, method: String, path: String, status: Int, requestID: String) {
        logger.info(
            "\(event)",
            metadata: [
                "event": "\(event)", "account": "\(account)", "peer": "\(peer)", "method": "\(method)", "path": "\(path)",
                "status": "\(status)", "request": "\(requestID)",
            ])
    }

    /// A request or login was refused.
    func denied(account: String, peer: String, method: String, path: String, reason: String, requestID: String) {
        logger.info(
            "denied",
            metadata: [
                "event": "denied", "account": "\(account)", "peer": "\(peer)", "method": "\(method)", "path": "\(path)",
                "reason": "\(reason)", "request": "\(requestID)",
            ])
    }
}

/// What handlers report to: metrics and the audit stream.
struct Observability: Sendable {
    let metrics: GatewayMetrics
    let audit: AuditLog
}
