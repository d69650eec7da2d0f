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
    func run(state: StateHolder, client: HTTPClient, logger: Logger) async {
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
            try? await Task.sleep(for: .seconds(configuration.readinessInterval))
        }
    }
}
