import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Policy

/// A `/v2/` request that was authorized and goes to the registry: the upstream head with its
/// token, and what Portcullis does when the registry answers (the rejected-token diagnosis,
/// the tags-of-digest cache, push times, the audit stream) and when the exchange ends (the
/// request log line, metrics).
///
/// Made by ``ProxyHandler`` on either path (decided on the event loop, or by the asynchronous
/// handler); used by the forwarding core on the client channel's event loop only, after it was
/// handed there, hence `@unchecked Sendable`.
final class ProxiedRequest: ForwardedRequest, @unchecked Sendable {
    let upstreamHead: HTTPRequestHead
    let silenceTimeout: TimeAmount
    /// The registry this request goes to.
    let target: UpstreamTarget
    var endpoint: UpstreamEndpoint { target.endpoint }

    private let proxy: ProxyHandler
    private let state: GatewayState
    private let method: HTTPMethod
    private let path: String
    /// The route template, for metric labels.
    private let routeTemplate: String
    private let account: String
    private let remoteAddress: String
    private var log: RequestLog
    private let started: NIODeadline
    private var sent: NIODeadline
    /// Whether this request's metrics are counted here (decided on the loop) or by the
    /// asynchronous handler's connection loop.
    private let countsMetrics: Bool

    init(
        upstreamHead: HTTPRequestHead, target: UpstreamTarget, proxy: ProxyHandler, state: GatewayState, method: HTTPMethod,
        path: String, routeTemplate: String, account: String, remoteAddress: String, log: RequestLog, started: NIODeadline, countsMetrics: Bool
    ) {
        self.upstreamHead = upstreamHead
        self.target = target
        self.silenceTimeout = .seconds(Int64(state.configuration.upstreamResponseTimeout))
        self.proxy = proxy
        self.state = state
        self.method = method
        self.path = path
        self.routeTemplate = routeTemplate
        self.account = account
        self.remoteAddress = remoteAddress
        self.log = log
        self.started = started
        self.sent = .now()
        self.countsMetrics = countsMetrics
    }

    private var logger: Logger { proxy.logger }

    func responseHead(_ head: HTTPResponseHead) -> ResponseDecision {
        let status = Int(head.status.code)
        log.upstreamStatus = status
        proxy.observability.metrics.upstreamLatency(
            route: routeTemplate, nanoseconds: (NIODeadline.now() - sent).nanoseconds)
        recordHealth(failed: head.status == .unauthorized || status >= 500)
        if head.status == .unauthorized {
            let upstream = target.configuration
            let registryChallenge = head.headers["www-authenticate"].joined(separator: ", ")
            log.outcome = "registry rejected Portcullis's token"
            logger.error(
                "the registry rejected the token Portcullis minted: check that its auth.token issuer and service match upstream.issuer and upstream.service and that its rootcertbundle (or jwks) trusts Portcullis's key",
                metadata: log.metadata.merging([
                    "registry_challenge": "\(registryChallenge)", "key_hint": "\(target.minter.hint)",
                    "key_id": "\(target.minter.announcedKeyID)", "registry_version": "\(upstream.registryVersion)",
                    "upstream_issuer": "\(upstream.issuer)", "upstream_service": "\(upstream.service)", "upstream_name": "\(upstream.name)",
                ]) { $1 })
            return .answer(
                ProxyHandler.errorResponse(
                    .upstreamFailed,
                    message: "the registry rejected Portcullis's token (issuer/service/key trust mismatch between Portcullis and the registry); see Portcullis's error log",
                    detail: .text(registryChallenge)))
        }
        // The registry has made a push or delete by the time it answers 2xx: the tags-of-digest
        // cache and the audit stream learn of it before the client does, and even when the
        // client is gone before the answer reaches it.
        if (200..<300).contains(status) && (method == .PUT || method == .DELETE) {
            proxy.didForward(method: method, path: path, status: status, headers: head.headers, account: account, state: state)
            proxy.auditChange(method: method, path: path, account: account, peer: remoteAddress, status: status, requestID: log.id)
        }
        return .relay(
            HTTPResponseHead(version: .http1_1, status: head.status, headers: ForwardingHeaders.clientResponseHeaders(from: head.headers)))
    }

    func upstreamFailed(_ error: any Error) -> LocalResponse {
        // A canary that cannot be reached at all leaves the rotation at once (no answer to
        // count); one that stays silent counts like a failed answer.
        if error is UpstreamSilence { recordHealth(failed: true) } else { takeOutOfRotation(reason: "unreachable: \(ConnectionFailure.describe(error))") }
        let upstream = target.configuration
        if error is UpstreamSilence {
            let seconds = state.configuration.upstreamResponseTimeout
            log.outcome = "upstream timed out: no answer within timeouts.upstream_response (\(seconds) s)"
            logger.error("registry did not answer in time", metadata: log.metadata.merging(["upstream": "\(upstream.url)"]) { $1 })
            return ProxyHandler.errorResponse(
                .upstreamTimedOut,
                message: "the registry at \(upstream.url) did not answer within \(seconds) s (timeouts.upstream_response)")
        }
        log.outcome = "upstream unreachable: \(ConnectionFailure.describe(error))"
        logger.error("registry unreachable", metadata: log.metadata.merging(["upstream": "\(upstream.url)"]) { $1 })
        return ProxyHandler.errorResponse(
            .unavailable,
            message: "the registry at \(upstream.url) is unavailable", detail: .text(ConnectionFailure.describe(error)))
    }

    /// Counts a canary's answer toward taking it out of rotation (several upstreams only; the
    /// primary is never taken out: there is nowhere else to go).
    private func recordHealth(failed: Bool) {
        guard state.upstreamTargets.count > 1, target !== state.primaryUpstream else { return }
        let threshold = target.configuration.fallbackAfter
        if proxy.health.recordAnswer(failed: failed, for: target.name, threshold: threshold) {
            loggedOutOfRotation(reason: "\(threshold) consecutive failed answers (5xx or 401 to Portcullis's token; fallback_after)")
        }
    }

    /// Takes a canary out of rotation now.
    private func takeOutOfRotation(reason: String) {
        guard state.upstreamTargets.count > 1, target !== state.primaryUpstream else { return }
        if proxy.health.record(ready: false, for: target.name) { loggedOutOfRotation(reason: reason) }
    }

    private func loggedOutOfRotation(reason: String) {
        let upstream = target.configuration
        logger.error(
            "upstream out of rotation: its repositories go to the primary until its readiness check passes",
            metadata: [
                "upstream_name": "\(upstream.name)", "upstream": "\(upstream.url)", "registry_version": "\(upstream.registryVersion)",
                "key_hint": "\(target.minter.hint)", "reason": "\(reason)",
            ])
        proxy.observability.metrics.upstreamAvailability(name: upstream.name, available: false)
    }

    func finished(_ outcome: ExchangeOutcome) {
        if countsMetrics {
            proxy.observability.metrics.request(
                route: routeTemplate, method: method.rawValue, status: outcome.status, bytesIn: outcome.bytesIn,
                bytesOut: outcome.bytesOut)
        }
        switch outcome.failure {
        case .clientGoneDuringRequest where outcome.duringShutdown, .clientGoneDuringResponse where outcome.duringShutdown:
            log.outcome = "cut: the shutdown grace period (shutdown.grace_period) ended first"
            logger.warning("request cut by shutdown", metadata: log.metadata)
        case .clientGoneDuringRequest:
            log.outcome = "client went away during the request body"
            logger.notice("request aborted by client", metadata: log.metadata)
        case .clientGoneDuringResponse:
            log.outcome = "stream broken after \(outcome.bytesOut) bytes: the client went away"
            logger.error("response stream broken", metadata: log.metadata)
        case .upstreamBrokeResponse(let error):
            log.outcome = "stream broken after \(outcome.bytesOut) bytes: \(error)"
            logger.error("response stream broken", metadata: log.metadata)
        case .upstreamFailedBeforeResponse:
            break  // the outcome and its error line come from upstreamFailed
        case nil:
            // A rejected token has its outcome and error line from responseHead already.
            if log.outcome == nil { log.outcome = "forwarded" }
        }
        // The request line, whatever happened: the same fields for every request.
        log.status = outcome.status == 0 ? nil : outcome.status
        log.bytes = outcome.bytesOut
        log.durationNanoseconds = (NIODeadline.now() - started).nanoseconds
        logger.info("request", metadata: log.metadata)
    }
}
