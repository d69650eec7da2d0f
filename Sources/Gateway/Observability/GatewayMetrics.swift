import CoreMetrics
import Metrics
import Prometheus
import Synchronization

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
    /// Metric handles already made, by name and labels: making one through the factory on every
    /// request (its registry lock, label arrays and lookups) showed in the per-request profile.
    private let handles = Handles()

    private final class Handles: Sendable {
        let counters = Mutex<[String: CoreMetrics.Counter]>([:])
        let timers = Mutex<[String: Metrics.Timer]>([:])
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Counter {
        var key = label
        for (name, value) in dimensions {
            key += "\u{0}" + name + "=" + value
        }
        if let counter = handles.counters.withLock({ $0[key] }) { return counter }
        let counter = CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory)
        handles.counters.withLock { $0[key] = counter }
        return counter
    }

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
        counter("portcullis_requests_total", [("route", route), ("method", method), ("status", String(status))]).increment()
        if bytesIn > 0 { counter("portcullis_request_bytes_total", [("route", route)]).increment(by: bytesIn) }
        if bytesOut > 0 { counter("portcullis_response_bytes_total", [("route", route)]).increment(by: bytesOut) }
    }

    /// How long the registry took to answer (to the response head).
    func upstreamLatency(route: String, nanoseconds: Int64) {
        let timer: Metrics.Timer
        if let cached = handles.timers.withLock({ $0[route] }) {
            timer = cached
        } else {
            timer = Metrics.Timer(label: "portcullis_upstream_duration_seconds", dimensions: [("route", route)], factory: factory)
            handles.timers.withLock { $0[route] = timer }
        }
        timer.recordNanoseconds(nanoseconds)
    }

    /// A token endpoint outcome: `complete`, `partial`, `refused`, `throttled`, `error`.
    func tokenIssuance(outcome: String) {
        counter("portcullis_token_requests_total", [("outcome", outcome)]).increment()
    }

    /// A failed authentication, by reason code.
    func authenticationFailure(reason: String) {
        Counter(label: "portcullis_authentication_failures_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    /// An upstream token lookup.
    /// Whether an upstream takes traffic (1) or is out of rotation (0), by its configured name.
    func upstreamAvailability(name: String, available: Bool) {
        Meter(label: "portcullis_upstream_available", dimensions: [("upstream", name)], factory: factory).set(available ? 1 : 0)
    }

    /// A request forwarded to an upstream, by the upstream's configured name (several upstreams only).
    func upstreamRequest(name: String) {
        counter("portcullis_upstream_requests_total", [("upstream", name)]).increment()
    }

    /// A signature check of a manifest pull (`content[].signed_by`), by ``SignatureVerdict/metricResult``.
    func signatureCheck(result: String) {
        counter("portcullis_signature_checks_total", [("result", result)]).increment()
    }

    /// Whether the shared state store (`state.store: postgres`) answered its last use (1) or not (0).
    func stateStoreAvailability(_ available: Bool) {
        Meter(label: "portcullis_state_store_up", factory: factory).set(available ? 1 : 0)
    }

    /// A use of the shared state store that failed, by operation (`throttle`, `ledger`, `robots`,
    /// `listen`, `tag_lock`, `notify`).
    func stateStoreFailure(operation: String) {
        counter("portcullis_state_store_failures_total", [("operation", operation)]).increment()
    }

    /// Manifest pushes recorded for the push ledger and not yet written to the database.
    func pushLedgerQueued(_ count: Int) {
        Meter(label: "portcullis_push_ledger_queued", factory: factory).set(count)
    }

    /// Push ledger entries given up on: the queue was full, or Portcullis stopped before the
    /// database returned (each is logged as a `push_times` line to import).
    func pushLedgerDropped(reason: String) {
        counter("portcullis_push_ledger_dropped_total", [("reason", reason)]).increment()
    }

    func upstreamTokenCache(hit: Bool) {
        counter("portcullis_upstream_token_cache_total", [("result", hit ? "hit" : "miss")]).increment()
    }

    /// The Prometheus text exposition.
    func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
