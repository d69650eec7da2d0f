import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOPosix
import Policy

/// `portcullis doctor --config FILE`: checks the wiring against the live registry.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check, against the live registry, that it answers and accepts Portcullis's tokens. Exits non-zero on any failure.")

    @Option(name: .long, help: "The YAML configuration file.")
    var config: String

    func run() async throws {
        let state = try GatewayState.loadForCommand(path: config, exitStatus: 1)
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        let lines = await Self.diagnose(state: state, client: client)
        try? await client.shutdown()
        for line in lines { print(line.text) }
        if lines.contains(where: { $0.failed }) { throw ExitCode(1) }
    }

    /// One result line.
    struct Line {
        var failed: Bool
        var text: String
        static func ok(_ text: String) -> Line { Line(failed: false, text: "ok    \(text)") }
        static func fail(_ text: String) -> Line { Line(failed: true, text: "FAIL  \(text)") }
        static func info(_ text: String) -> Line { Line(failed: false, text: "info  \(text)") }
        static func warn(_ text: String) -> Line { Line(failed: false, text: "warn  \(text)") }
    }

    /// Runs every check, for each upstream; with several, each line names its upstream and
    /// each upstream ends with one verdict line.
    static func diagnose(state: GatewayState, client: HTTPClient) async -> [Line] {
        guard state.upstreamTargets.count > 1 else { return await diagnose(state: state, target: state.primaryUpstream, client: client) }
        var lines: [Line] = []
        for target in state.upstreamTargets {
            let checks = await diagnose(state: state, target: target, client: client)
            let role = target === state.primaryUpstream ? "primary" : "canary"
            lines += checks.map { Line(failed: $0.failed, text: $0.text.prefix(6) + "[\(target.name)] " + $0.text.dropFirst(6)) }
            let failed = checks.contains(where: \.failed)
            let upstream = target.configuration
            lines.append(
                failed
                    ? .fail("upstream \(target.name) (\(role), registry \(upstream.registryVersion), key hint \(target.minter.hint), \(upstream.url)): NOT usable")
                    : .ok("upstream \(target.name) (\(role), registry \(upstream.registryVersion), key hint \(target.minter.hint), \(upstream.url)): usable"))
        }
        return lines
    }

    /// Runs every check against one upstream.
    static func diagnose(state: GatewayState, target: UpstreamTarget, client: HTTPClient) async -> [Line] {
        let upstream = target.configuration
        let probe = UpstreamProbe(client: client)
        var lines: [Line] = []

        switch await probe.check(upstream: upstream.url, token: nil) {
        case .unreachable(let error):
            return [.fail("registry at \(upstream.url) does not answer /v2/: \(error) — fix: check upstream.url and that the registry listens there")]
        case .accepted:
            lines.append(.fail("registry at \(upstream.url) answers /v2/ without authentication: anyone who reaches it bypasses Portcullis — fix: add the auth.token block that `portcullis registry-config` prints"))
        case .unexpected(let status):
            lines.append(.fail("registry at \(upstream.url) answers /v2/ with status \(status) — fix: is upstream.url a distribution registry?"))
        case .rejected(let challenge):
            lines.append(.ok("registry at \(upstream.url) answers /v2/ and asks for tokens (\(challenge))"))
            if let service = Self.parameter("service", in: challenge), service != upstream.service {
                lines.append(.fail("the registry's auth.token.service is \"\(service)\" but upstream.service is \"\(upstream.service)\" — fix: make them equal"))
            } else {
                lines.append(.ok("the registry's auth.token.service matches upstream.service \"\(upstream.service)\""))
            }
            // Clients never see the registry's own challenge through Portcullis, but a realm that
            // names another token server means the registry was wired to another Portcullis (or
            // its configuration is stale), and clients that reach it directly are sent there.
            let realm = state.configuration.realm
            if let registryRealm = Self.parameter("realm", in: challenge), registryRealm != realm {
                lines.append(
                    .warn(
                        "the registry's auth.token.realm is \"\(registryRealm)\" but this Portcullis's realm is \"\(realm)\": the registry was set up for another token server — fix: set its auth.token.realm to \"\(realm)\" (`portcullis registry-config` prints it)"
                    ))
            }
        }

        let configuredHint = target.minter.hint
        var alternatives: [KeyHint] = []
        if !target.signingKey.certificateChain.isEmpty { alternatives.append(.x5c) }
        if (try? target.signingKey.identifiers.kid(for: upstream.registryVersion)) != nil { alternatives.append(.kid(upstream.registryVersion)) }
        alternatives.removeAll { $0 == configuredHint }

        var acceptedAlternatives: [KeyHint] = []
        for hint in alternatives {
            guard let minter = try? TokenMinter(key: target.signingKey, hint: hint), let token = try? UpstreamProbe.probeToken(state, minter: minter, upstream: target) else { continue }
            if await probe.check(upstream: upstream.url, token: token).isAccepted { acceptedAlternatives.append(hint) }
        }

        do {
            let token = try UpstreamProbe.probeToken(state, upstream: target)
            switch await probe.check(upstream: upstream.url, token: token) {
            case .accepted:
                lines.append(.ok("the registry accepts a token with key hint \(configuredHint) (key id \(target.minter.announcedKeyID)), issuer \"\(upstream.issuer)\", service \"\(upstream.service)\""))
            case .rejected(let challenge):
                let fix: String
                if !acceptedAlternatives.isEmpty {
                    fix = "the registry accepts \(acceptedAlternatives.map(\.description).joined(separator: " and ")) instead: the kid form does not match what registry \(upstream.registryVersion) computes; set upstream.registry_version to the registry's real version or use key_hint: x5c"
                } else {
                    fix = "the registry's rootcertbundle (or jwks) does not hold Portcullis's key, or its auth.token.issuer is not \"\(upstream.issuer)\"; run `portcullis registry-config` and restart the registry with its output"
                }
                lines.append(.fail("the registry rejects a token with key hint \(configuredHint) (key id \(target.minter.announcedKeyID)); its challenge: \(challenge) — fix: \(fix)"))
            case .unreachable(let error):
                lines.append(.fail("registry unreachable while checking the token: \(error)"))
            case .unexpected(let status):
                lines.append(.fail("registry answered status \(status) to a Portcullis token"))
            }
        } catch {
            lines.append(.fail("cannot mint a token: \(error)"))
        }
        for hint in alternatives {
            lines.append(.info("key hint \(hint) would \(acceptedAlternatives.contains(hint) ? "also be accepted" : "not be accepted")"))
        }
        return lines
    }

    /// A parameter of a `Bearer a="…",b="…"` challenge.
    static func parameter(_ name: String, in challenge: String) -> String? {
        guard let range = challenge.range(of: "\(name)=\"") else { return nil }
        let rest = challenge[range.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }
}
