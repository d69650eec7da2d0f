import Metrics
import Prometheus

/// Portcullis's metrics, exported in the Prometheus text format on `GET /metrics`.
///
/// Labels only ever take values from bounded sets (route templates, methods, status codes,
/// outcome and reason codes), never repository or account names.
struct GatewayMetrics: Sendable {
    /// Where the metrics live; emitted by `/metrics`.
    let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    /// Open client connections.
    let openConnections: Meter

    init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30),
        ]
        self.factory = factory
        self.openConnections = Meter(label: "portcullis_open_connections", factory: factory)
    }

    /// A request answered, by route template, method and status.
    func request(route: String, method: String, status: Int, bytesIn: Int, bytesOut: Int) {
        Counter(label: "portcullis_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory)
            .increment()
        if bytesIn > 0 { Counter(label: "portcullis_request_bytes_total", dimensions: [("route", route)], factory: factory).increment(by: bytesIn) }
        if bytesOut > 0 { Counter(label: "portcullis_response_bytes_total", dimensions: [("route", route)], factory: factory).increment(by: bytesOut) }
    }

    /// How long the registry took to answer (to the response head).
    func upstreamLatency(route: String, nanoseconds: Int64) {
        Metrics.Timer(label: "portcullis_upstream_duration_seconds", dimensions: [("route", route)], factory: factory)
            .recordNanoseconds(nanoseconds)
    }

    /// A token endpoint outcome: `complete`, `partial`, `refused`, `throttled`, `error`.
    func tokenIssuance(outcome: String) {
        Counter(label: "portcullis_token_requests_total", dimensions: [("outcome", outcome)], factory: factory).increment()
    }

    /// A failed authentication, by reason code.
    func authenticationFailure(reason: String) {
        Counter(label: "portcullis_authentication_failures_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    /// An upstream token lookup.
    func upstreamTokenCache(hit: Bool) {
        Counter(label: "portcullis_upstream_token_cache_total", dimensions: [("result", hit ? "hit" : "miss")], factory: factory)
            .increment()
    }

    /// The Prometheus text exposition.
    func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
