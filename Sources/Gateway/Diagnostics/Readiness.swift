import AsyncHTTPClient
import Logging
import Synchronization

/// Whether Portcullis should receive traffic: the registry is reachable *and* accepts a
/// Portcullis-minted token. Checked periodically in the background, never per probe.
final class Readiness: Sendable {
    private let status = Mutex<(ready: Bool, reason: String)>((false, "not checked yet"))

    private let draining = Atomic<Bool>(false)

    /// The latest verdict; never ready once draining.
    var current: (ready: Bool, reason: String) {
        if draining.load(ordering: .relaxed) { return (false, "shutting down: draining requests in flight") }
        return status.withLock { $0 }
    }

    /// Turns readiness false for good: the process is shutting down.
    func markDraining() {
        draining.store(true, ordering: .relaxed)
    }

    /// Runs checks every `interval` seconds until cancelled, logging each change.
    func run(state: StateHolder, client: HTTPClient, logger: Logger, health: UpstreamHealth? = nil, metrics: GatewayMetrics? = nil) async {
        let probe = UpstreamProbe(client: client)
        while !Task.isCancelled {
            let current = state.current
            let configuration = current.configuration
            let verdict: (Bool, String)
            do {
                let token = try UpstreamProbe.probeToken(current)
                switch await probe.check(upstream: configuration.upstream.url, token: token) {
                case .accepted:
                    verdict = (true, "registry accepts Portcullis's token")
                case .rejected(let challenge):
                    verdict = (false, "registry rejects Portcullis's token (key hint \(current.upstreamMinter.hint), registry \(configuration.upstream.registryVersion)); its challenge: \(challenge)")
                case .unreachable(let error):
                    verdict = (false, "registry unreachable: \(error)")
                case .unexpected(let status):
                    verdict = (false, "registry answered /v2/ with status \(status)")
                }
            } catch {
                verdict = (false, "cannot mint a probe token: \(error)")
            }
            let previous = status.withLock { old in
                let previous = old
                old = verdict
                return previous
            }
            if previous.ready != verdict.0 || previous.reason != verdict.1 {
                if verdict.0 {
                    logger.notice("ready", metadata: ["reason": "\(verdict.1)"])
                } else {
                    logger.error("not ready", metadata: ["reason": "\(verdict.1)"])
                }
            }
            if let health, current.upstreamTargets.count > 1 {
                await checkCanaries(current, probe: probe, health: health, metrics: metrics, logger: logger)
            }
            try? await Task.sleep(for: .seconds(configuration.readinessInterval))
        }
    }

    /// Checks each non-primary upstream like the primary; one that fails leaves the rotation
    /// (its repositories go to the primary) until it passes again. Each change is logged (an
    /// error naming the upstream, its version, its key hint and the registry's answer) and
    /// shown by `portcullis_upstream_available`.
    private func checkCanaries(_ state: GatewayState, probe: UpstreamProbe, health: UpstreamHealth, metrics: GatewayMetrics?, logger: Logger) async {
        for target in state.upstreamTargets where target !== state.primaryUpstream {
            let upstream = target.configuration
            let reason: String?
            do {
                let token = try UpstreamProbe.probeToken(state, upstream: target)
                // A short deadline: the HTTP client keeps retrying a refused connection until the
                // deadline, and a dead canary must leave the rotation within the interval.
                switch await probe.check(upstream: upstream.url, token: token, timeout: .seconds(1)) {
                case .accepted: reason = nil
                case .rejected(let challenge): reason = "registry rejects Portcullis's token; its challenge: \(challenge)"
                case .unreachable(let error): reason = "registry unreachable: \(error)"
                case .unexpected(let status): reason = "registry answered /v2/ with status \(status)"
                }
            } catch {
                reason = "cannot mint a probe token: \(error)"
            }
            let metadata: Logger.Metadata = [
                "upstream_name": "\(upstream.name)", "upstream": "\(upstream.url)", "registry_version": "\(upstream.registryVersion)",
                "key_hint": "\(target.minter.hint)",
            ]
            let wasAvailable = health.isAvailable(upstream.name)
            health.record(ready: reason == nil, for: upstream.name)
            metrics?.upstreamAvailability(name: upstream.name, available: reason == nil)
            if let reason, wasAvailable {
                logger.error(
                    "upstream out of rotation: its repositories go to the primary until it passes again",
                    metadata: metadata.merging(["reason": "\(reason)"]) { $1 })
            } else if reason == nil, !wasAvailable {
                logger.notice("upstream back in rotation", metadata: metadata)
            }
        }
    }
}
