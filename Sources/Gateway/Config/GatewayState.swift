import Foundation
import Policy

/// The configuration turned into the Policy values requests are decided with.
///
/// One immutable value, built from the configuration and the files it names, and replaced
/// whole when anything changes.
struct GatewayState: Sendable {
    let configuration: GatewayConfiguration
    let rules: RuleSet
    let credentials: CredentialStore
    /// The signing key shared by client and upstream tokens.
    let signingKey: SigningKey
    /// Mints tokens for Portcullis's own clients (announced by RFC 7638 `kid`).
    let clientMinter: TokenMinter
    /// Verifies tokens presented by clients.
    let clientVerifier: TokenVerifier
    /// Mints tokens for the registry in the pinned version's format.
    let upstreamMinter: TokenMinter
    /// Upstream tokens minted with ``upstreamMinter``; a new state starts with an empty cache.
    let upstreamTokens = UpstreamTokenCache()

    /// Reads every file the configuration names.
    /// - Throws: ``ConfigurationErrors`` with a key path for each problem.
    static func load(_ configuration: GatewayConfiguration) throws -> GatewayState {
        var problems: [ConfigurationProblem] = []
        func problem(_ keyPath: String, _ message: String) {
            problems.append(ConfigurationProblem(keyPath: keyPath, message: message))
        }
        func read(_ path: String, _ keyPath: String) -> String? {
            guard let data = FileManager.default.contents(atPath: path) else {
                problem(keyPath, "cannot read \(path)")
                return nil
            }
            return String(decoding: data, as: UTF8.self)
        }

        var signingKey: SigningKey?
        if let keyPEM = read(configuration.token.key, "token.key") {
            let chainPEM = configuration.token.certificate.flatMap { read($0, "token.certificate") }
            do {
                signingKey = try SigningKey(privateKeyPEM: keyPEM, certificateChainPEM: chainPEM)
            } catch let error as PolicyError {
                problem(configuration.token.certificate != nil && error.message.contains("certificate") ? "token.certificate" : "token.key", error.message)
            } catch {
                problem("token.key", "\(error)")
            }
        }

        var credentials = CredentialStore()
        if let path = configuration.htpasswd, let text = read(path, "users.htpasswd") {
            do {
                credentials.htpasswd = try HtpasswdFile(contents: text)
            } catch let error as PolicyError {
                problem("users.htpasswd", "\(path): \(error.message)")
            } catch {
                problem("users.htpasswd", "\(error)")
            }
        }

        var clientMinter: TokenMinter?
        var upstreamMinter: TokenMinter?
        if let signingKey {
            clientMinter = try? TokenMinter(key: signingKey, hint: .jwks(kid: signingKey.identifiers.rfc7638))
            do {
                upstreamMinter = try TokenMinter(key: signingKey, hint: Self.keyHint(configuration.upstream, key: signingKey))
            } catch let error as PolicyError {
                problem("upstream.key_hint", error.message)
            } catch {
                problem("upstream.key_hint", "\(error)")
            }
        }

        guard problems.isEmpty, let signingKey, let clientMinter, let upstreamMinter else {
            throw ConfigurationErrors(file: configuration.sourcePath, problems: problems)
        }
        return GatewayState(
            configuration: configuration,
            rules: RuleSet(configuration.rules),
            credentials: credentials,
            signingKey: signingKey,
            clientMinter: clientMinter,
            clientVerifier: TokenVerifier(
                issuer: configuration.token.issuer, audience: configuration.token.service, keys: [TrustedKey(signingKey)]),
            upstreamMinter: upstreamMinter
        )
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
