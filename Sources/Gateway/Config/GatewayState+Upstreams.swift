import Policy
import PortcullisConfiguration

/// The `upstream` or `upstreams` section: a minter and an endpoint for each registry.
extension GatewayState {
    /// Every upstream in configuration order (the single `upstream:` as the primary), each with
    /// its minter and endpoint; `nil` unless every one could be built (none can without
    /// `signingKey`, and then none is checked).
    static func upstreamTargets(
        _ configuration: GatewayConfiguration, signingKey: SigningKey?, _ problems: inout StateProblems
    ) -> [UpstreamTarget]? {
        var upstreamTargets: [UpstreamTarget] = []
        var declared = configuration.upstreams
        if declared.isEmpty {
            var single = configuration.upstream
            single.isPrimary = true
            declared = [single]
        }
        // Problems name `upstreams[i]` for a list, `upstream` for the single form.
        let listed = configuration.upstreams.count > 1 || (configuration.upstreams.first.map { $0.name != "default" } ?? false)
        if let signingKey {
            for (index, upstream) in declared.enumerated() {
                let keyPath = listed ? "upstreams[\(index)]" : "upstream"
                if let target = upstreamTarget(
                    upstream, keyPath: keyPath, signingKey: signingKey, tokenCertificate: configuration.token.certificate, &problems)
                {
                    upstreamTargets.append(target)
                }
            }
        }
        return upstreamTargets.count == declared.count ? upstreamTargets : nil
    }

    /// One upstream, named `keyPath` in problems: signing with its own `key` or else with
    /// `signingKey` (whose chain is `tokenCertificate`); `nil`, with a problem, when its key, key
    /// hint or URL cannot be used.
    static func upstreamTarget(
        _ upstream: GatewayConfiguration.Upstream, keyPath: String, signingKey: SigningKey, tokenCertificate: String?,
        _ problems: inout StateProblems
    ) -> UpstreamTarget? {
        var key = signingKey
        if let path = upstream.key {
            guard let keyPEM = problems.read(path, "\(keyPath).key") else { return nil }
            let chainPEM = upstream.certificate.flatMap { problems.read($0, "\(keyPath).certificate") }
            do {
                key = try SigningKey(privateKeyPEM: keyPEM, certificateChainPEM: chainPEM)
            } catch let error as PolicyError {
                problems.problem("\(keyPath).key", error.message)
                return nil
            } catch {
                problems.problem("\(keyPath).key", "\(error)")
                return nil
            }
        }
        var minter: TokenMinter?
        do {
            minter = try TokenMinter(key: key, hint: Self.keyHint(upstream, key: key))
        } catch let error as PolicyError {
            problems.problem("\(keyPath).key_hint", error.message)
        } catch {
            problems.problem("\(keyPath).key_hint", "\(error)")
        }
        var endpoint: UpstreamEndpoint?
        do {
            endpoint = try UpstreamEndpoint(url: upstream.url)
        } catch {
            problems.problem("\(keyPath).url", "\(error)")
        }
        guard let minter, let endpoint else { return nil }
        return UpstreamTarget(
            configuration: upstream, minter: minter, signingKey: key,
            certificatePath: upstream.key == nil ? tokenCertificate : upstream.certificate, endpoint: endpoint)
    }

    /// The key hint the configuration asks for.
    static func keyHint(_ upstream: GatewayConfiguration.Upstream, key: SigningKey) -> KeyHint {
        switch upstream.keyHint {
        case "kid": .kid(upstream.registryVersion)
        case "jwks": .jwks(kid: upstream.jwksKid ?? key.identifiers.rfc7638)
        default: .x5c
        }
    }
}
