import Foundation
import LDAPDirectory
import NIOSSL
import Policy
import PortcullisConfiguration
import SwiftASN1
import X509

/// The configuration turned into the Policy values requests are decided with.
///
/// One immutable value, built from the configuration and the files it names, and replaced
/// whole when anything changes. A class, so that handing it to a request is one retain (as a
/// struct its copy retained every member, on every request).
final class GatewayState: Sendable {
    let configuration: GatewayConfiguration
    let rules: RuleSet
    let credentials: CredentialStore
    /// The signing key shared by client and upstream tokens.
    let signingKey: SigningKey
    /// Mints tokens for Portcullis's own clients (announced by RFC 7638 `kid`).
    let clientMinter: TokenMinter
    /// Verifies tokens presented by clients: Portcullis's own and those of external issuers.
    let trustedIssuers: TrustedIssuers
    /// Verifies refresh tokens: signed by Portcullis for the refresh audience of its service.
    var refreshVerifier: TokenVerifier {
        TokenVerifier(issuer: configuration.token.issuer, audience: Self.refreshAudience(configuration), keys: ownKeys)
    }

    /// The audience of refresh tokens, which no access-token check accepts.
    static func refreshAudience(_ configuration: GatewayConfiguration) -> String {
        "refresh:" + configuration.token.service
    }

    /// The files the state was read from, watched for changes.
    var watchedFiles: [String] {
        let configuration = configuration
        var files = [configuration.sourcePath, configuration.token.key]
        files += [configuration.token.certificate, configuration.token.nextKey, configuration.token.nextCertificate, configuration.htpasswd, configuration.robots].compactMap { $0 }
        if let tls = configuration.tls { files += [tls.certificate, tls.key] }
        for issuer in configuration.issuers {
            files += issuer.certificates + issuer.publicKeys + [issuer.jwks].compactMap { $0 }
        }
        for issuer in configuration.oidc {
            if case .file(let path) = issuer.keys { files.append(path) }
        }
        if let ca = configuration.ldap?.ca { files.append(ca) }
        for upstream in configuration.upstreams {
            files += [upstream.key, upstream.certificate].compactMap { $0 }
        }
        return files
    }

    /// Every registry Portcullis forwards to, in configuration order (one with `upstream:`).
    let upstreamTargets: [UpstreamTarget]
    /// The one serving every repository no other upstream claims, and the catalog.
    let primaryUpstream: UpstreamTarget
    /// Which upstream a repository's requests go to.
    let routing: UpstreamRouting

    /// Mints tokens for the primary registry in its pinned version's format.
    var upstreamMinter: TokenMinter { primaryUpstream.minter }
    /// Where the forwarding core connects to the primary registry.
    var upstreamEndpoint: UpstreamEndpoint { primaryUpstream.endpoint }
    /// Upstream tokens of the primary; a new state starts with an empty cache.
    var upstreamTokens: UpstreamTokenCache { primaryUpstream.tokens }

    /// The upstream that serves `repository` now: the primary for everything when there is one
    /// upstream (no hashing on that path), else by ``routing`` with the upstreams `health` has
    /// taken out of rotation going to the primary.
    func upstream(for repository: String?, health: UpstreamHealth?) -> UpstreamTarget {
        guard upstreamTargets.count > 1, let repository else { return primaryUpstream }
        let name = routing.upstream(for: repository) { health?.isAvailable($0) ?? true }
        return upstreamTargets.first { $0.name == name } ?? primaryUpstream
    }

    /// The upstream named `name`.
    func upstream(named name: String) -> UpstreamTarget? {
        upstreamTargets.first { $0.name == name }
    }
    /// The key that will replace ``signingKey``, already trusted and announced.
    let nextKey: SigningKey?

    /// The TLS context new connections use (rebuilt when the certificate or key file changes).
    let tlsContext: NIOSSLContext?
    /// Peers whose `X-Forwarded-For` is believed.
    let trustedProxies: [AddressRange]

    /// Keys Portcullis signed with before a rotation, still trusted for their tokens.
    let previousKeys: [TrustedKey]
    /// OIDC issuers whose identity tokens log in workloads (`users.oidc`), by `iss`.
    let workloadIssuers: [String: WorkloadIssuer]

    /// The issuer of an identity token presented as a Basic password, with the token split:
    /// `nil` when the password is not a JWT of a configured issuer (then it is a password).
    func workloadIssuer(presentedAsPassword secret: String) -> (WorkloadIssuer, UnverifiedToken)? {
        guard !workloadIssuers.isEmpty, secret.hasPrefix("eyJ"), secret.utf8.count < 16 * 1024,
            let token = try? UnverifiedToken(secret), let iss = token.issuer, let issuer = workloadIssuers[iss]
        else { return nil }
        return (issuer, token)
    }

    /// Every key Portcullis's own tokens may be signed with: the current one first.
    var ownKeys: [TrustedKey] { [TrustedKey(signingKey)] + (nextKey.map { [TrustedKey($0)] } ?? []) + previousKeys }

    /// The public keys Portcullis signs or will sign with, as a JWKS document (`GET /jwks`).
    var jsonWebKeySet: [UInt8] {
        var keys: [[String: String]] = []
        var seen: Set<String> = []
        let currentKid: String
        if case .jwks(let kid) = upstreamMinter.hint { currentKid = kid } else { currentKid = signingKey.identifiers.rfc7638 }
        for (key, kid) in [(signingKey.publicKey, currentKid)] + ([nextKey].compactMap { $0 }.map { ($0.publicKey, $0.identifiers.rfc7638) })
            + previousKeys.map({ ($0.publicKey, KeyIdentifiers($0.publicKey).rfc7638) })
        where seen.insert(kid).inserted {
            keys.append(key.jsonWebKey(kid: kid))
        }
        let data = (try? JSONSerialization.data(withJSONObject: ["keys": keys], options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Array(data)
    }

    /// Client tokens verified with ``trustedIssuers``; a new state starts with an empty cache.
    let verifiedTokens = VerifiedTokenCache()

    /// A client token verified before and valid at `now`, without verifying anything (`nil`
    /// means: verify it, or refuse it, with ``verifyClientToken(_:now:)``).
    func cachedClientToken(_ token: String, now: Date) -> (TokenClaims, TrustedIssuers.Issuer)? {
        let seconds = now.timeIntervalSince1970
        guard let cached = verifiedTokens.lookup(token, now: seconds) else { return nil }
        if let nbf = cached.0.nbf, seconds + cached.1.verifier.leeway < nbf.value.timeIntervalSince1970 { return nil }
        return cached
    }

    /// Verifies a client token, from the cache when it was verified before.
    func verifyClientToken(_ token: String, now: Date) async throws -> (TokenClaims, TrustedIssuers.Issuer) {
        let seconds = now.timeIntervalSince1970
        if let cached = verifiedTokens.lookup(token, now: seconds) {
            // Not before is checked again: a cached token may have been presented early.
            if let nbf = cached.0.nbf, seconds + cached.1.verifier.leeway < nbf.value.timeIntervalSince1970 {
                throw PolicyError(.invalidToken, "token not valid before \(Int(nbf.value.timeIntervalSince1970))")
            }
            return cached
        }
        let verified = try await trustedIssuers.verify(token, now: now)
        verifiedTokens.insert(token, claims: verified.0, issuer: verified.1, now: seconds)
        return verified
    }

    init(
        configuration: GatewayConfiguration, rules: RuleSet, credentials: CredentialStore, signingKey: SigningKey, clientMinter: TokenMinter,
        trustedIssuers: TrustedIssuers, upstreamTargets: [UpstreamTarget], nextKey: SigningKey?,
        tlsContext: NIOSSLContext?, trustedProxies: [AddressRange], previousKeys: [TrustedKey], workloadIssuers: [String: WorkloadIssuer] = [:]
    ) {
        self.workloadIssuers = workloadIssuers
        self.configuration = configuration
        self.rules = rules
        self.credentials = credentials
        self.signingKey = signingKey
        self.clientMinter = clientMinter
        self.trustedIssuers = trustedIssuers
        self.upstreamTargets = upstreamTargets
        let primary = upstreamTargets.first(where: \.configuration.isPrimary) ?? upstreamTargets[0]
        self.primaryUpstream = primary
        self.routing = UpstreamRouting(
            primary: primary.name,
            claims: upstreamTargets.map { target in
                UpstreamRouting.Claim(
                    name: target.name, repositories: target.configuration.repositories.compactMap { try? Pattern($0) }, weight: target.configuration.weight)
            })
        self.nextKey = nextKey
        self.tlsContext = tlsContext
        self.trustedProxies = trustedProxies
        self.previousKeys = previousKeys
    }

    /// Reads every file the configuration names.
    /// - Throws: ``ConfigurationErrors`` with a key path for each problem.
    /// - Parameter previousKeys: signing keys Portcullis used before a key rotation, still
    ///   trusted for the client and refresh tokens they signed.
    static func load(_ configuration: GatewayConfiguration, previousKeys: [TrustedKey] = []) throws -> GatewayState {
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

        var nextKey: SigningKey?
        if let keyPath = configuration.token.nextKey, let keyPEM = read(keyPath, "token.next_key") {
            let chainPEM = configuration.token.nextCertificate.flatMap { read($0, "token.next_certificate") }
            do {
                nextKey = try SigningKey(privateKeyPEM: keyPEM, certificateChainPEM: chainPEM)
            } catch let error as PolicyError {
                problem("token.next_key", error.message)
            } catch {
                problem("token.next_key", "\(error)")
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

        if let path = configuration.robots, FileManager.default.fileExists(atPath: path), let text = read(path, "users.robots") {
            do {
                credentials = CredentialStore(htpasswd: credentials.htpasswd, robots: try RobotFile(json: Array(text.utf8)).robots)
                if let clash = credentials.robots.keys.first(where: { credentials.htpasswd?.entries[$0] != nil }) {
                    problem("users.robots", "robot \"\(clash)\" has the same name as an htpasswd user")
                }
            } catch let error as PolicyError {
                problem("users.robots", "\(path): \(error.message)")
            } catch {
                problem("users.robots", "\(error)")
            }
        }

        if let ldap = configuration.ldap {
            var lookup: LDAPSettings.UserLookup?
            switch ldap.userLookup {
            case .template(let template):
                lookup = .template(template)
            case .search(let base, let filter, let bindDN, let passwordFile):
                if let password = read(passwordFile, "users.ldap.search.bind_password_file") {
                    let trimmed = password.trimmingCharacters(in: .newlines)
                    if trimmed.isEmpty { problem("users.ldap.search.bind_password_file", "\(passwordFile) is empty") }
                    lookup = .search(base: base, filter: filter, bindDN: bindDN, bindPassword: trimmed)
                }
            }
            let groups: LDAPSettings.GroupLookup? = switch ldap.groups {
            case .none: nil
            case .search(let base, let filter, let attribute, let label): .search(base: base, filter: filter, attribute: attribute, label: label)
            case .memberOf(let label): .memberOf(label: label)
            }
            if let lookup {
                let settings = LDAPSettings(
                    url: ldap.url, startTLS: ldap.startTLS, caFile: ldap.ca, userLookup: lookup, groupLookup: groups,
                    accountAttribute: ldap.accountAttribute, timeout: ldap.timeout)
                credentials.directory = LDAPDirectory(settings: settings)
                credentials.directoryLogins = DirectoryLoginCache(
                    lifetime: Double(ldap.cacheLifetime), accountRetention: Double(ldap.cacheLifetime + configuration.token.lifetime))
            }
        }

        var workloadIssuers: [String: WorkloadIssuer] = [:]
        for (index, oidc) in configuration.oidc.enumerated() {
            let keyPath = "users.oidc[\(index)]"
            var source = WorkloadIssuer.KeySource.discovery
            var fixedKeys: [TrustedKey] = []
            switch oidc.keys {
            case .discovery:
                source = .discovery
            case .url(let url):
                source = .url(url)
            case .file(let path):
                source = .fixed
                if let text = read(path, "\(keyPath).jwks") {
                    do {
                        fixedKeys = try PublicKeyMaterial.parseJSONWebKeySet(Array(text.utf8)).map { kid, key in
                            TrustedKey(publicKey: key, keyIDs: kid.map { [$0] } ?? [])
                        }
                        if fixedKeys.isEmpty { problem("\(keyPath).jwks", "\(path) holds no key") }
                    } catch let error as PolicyError {
                        problem("\(keyPath).jwks", "\(path): \(error.message)")
                    } catch {
                        problem("\(keyPath).jwks", "\(path): \(error)")
                    }
                }
            }
            let policy = OIDCIssuer(
                issuer: oidc.issuer, audiences: Set(oidc.audiences), account: oidc.account, labels: oidc.labels, required: oidc.require,
                leeway: Double(oidc.leeway))
            workloadIssuers[oidc.issuer] = WorkloadIssuer(policy: policy, source: source, fixedKeys: fixedKeys, username: oidc.username)
        }
        if !workloadIssuers.isEmpty {
            credentials.workloadLogins = DirectoryLoginCache(lifetime: 60, accountRetention: Double(configuration.token.lifetime + 60))
        }

        var clientMinter: TokenMinter?
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
            clientMinter = try? TokenMinter(key: signingKey, hint: .jwks(kid: signingKey.identifiers.rfc7638))
            for (index, upstream) in declared.enumerated() {
                let keyPath = listed ? "upstreams[\(index)]" : "upstream"
                var key = signingKey
                if let path = upstream.key {
                    guard let keyPEM = read(path, "\(keyPath).key") else { continue }
                    let chainPEM = upstream.certificate.flatMap { read($0, "\(keyPath).certificate") }
                    do {
                        key = try SigningKey(privateKeyPEM: keyPEM, certificateChainPEM: chainPEM)
                    } catch let error as PolicyError {
                        problem("\(keyPath).key", error.message)
                        continue
                    } catch {
                        problem("\(keyPath).key", "\(error)")
                        continue
                    }
                }
                var minter: TokenMinter?
                do {
                    minter = try TokenMinter(key: key, hint: Self.keyHint(upstream, key: key))
                } catch let error as PolicyError {
                    problem("\(keyPath).key_hint", error.message)
                } catch {
                    problem("\(keyPath).key_hint", "\(error)")
                }
                var endpoint: UpstreamEndpoint?
                do {
                    endpoint = try UpstreamEndpoint(url: upstream.url)
                } catch {
                    problem("\(keyPath).url", "\(error)")
                }
                if let minter, let endpoint {
                    upstreamTargets.append(
                        UpstreamTarget(
                            configuration: upstream, minter: minter, signingKey: key,
                            certificatePath: upstream.key == nil ? configuration.token.certificate : upstream.certificate, endpoint: endpoint))
                }
            }
        }

        var issuers: [TrustedIssuers.Issuer] = []
        for (index, external) in configuration.issuers.enumerated() {
            let keyPath = "issuers[\(index)]"
            var keys: [TrustedKey] = []
            var roots: [Certificate] = []
            for (position, path) in external.certificates.enumerated() {
                guard let text = read(path, "\(keyPath).certificates[\(position)]") else { continue }
                do {
                    for document in try PEMDocument.parseMultiple(pemString: text) where document.discriminator == "CERTIFICATE" {
                        let certificate = try Certificate(derEncoded: document.derBytes)
                        roots.append(certificate)
                        keys.append(TrustedKey(publicKey: try PublicKeyMaterial(certificate.publicKey), certificateDER: document.derBytes))
                    }
                } catch let error as PolicyError {
                    problem("\(keyPath).certificates[\(position)]", "\(path): \(error.message)")
                } catch {
                    problem("\(keyPath).certificates[\(position)]", "\(path): not a PEM certificate (\(error))")
                }
            }
            for (position, path) in external.publicKeys.enumerated() {
                guard let text = read(path, "\(keyPath).public_keys[\(position)]") else { continue }
                do {
                    keys.append(TrustedKey(publicKey: try PublicKeyMaterial(pem: text)))
                } catch let error as PolicyError {
                    problem("\(keyPath).public_keys[\(position)]", "\(path): \(error.message)")
                } catch {
                    problem("\(keyPath).public_keys[\(position)]", "\(path): \(error)")
                }
            }
            if let path = external.jwks, let text = read(path, "\(keyPath).jwks") {
                do {
                    for (kid, key) in try PublicKeyMaterial.parseJSONWebKeySet(Array(text.utf8)) {
                        keys.append(TrustedKey(publicKey: key, keyIDs: kid.map { [$0] } ?? []))
                    }
                } catch let error as PolicyError {
                    problem("\(keyPath).jwks", "\(path): \(error.message)")
                } catch {
                    problem("\(keyPath).jwks", "\(path): \(error)")
                }
            }
            if external.issuer == configuration.token.issuer {
                problem("\(keyPath).issuer", "\"\(external.issuer)\" is Portcullis's own token.issuer")
            }
            issuers.append(
                TrustedIssuers.Issuer(
                    verifier: TokenVerifier(issuer: external.issuer, audiences: Set(external.audiences), keys: keys, trustedRoots: roots),
                    trustAccessClaim: external.trustAccessClaim))
        }

        var tlsContext: NIOSSLContext?
        if let tls = configuration.tls {
            do {
                var settings = TLSConfiguration.makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificate).map { .certificate($0) },
                    privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.key, format: .pem)))
                settings.applicationProtocols = ["h2", "http/1.1"]
                settings.minimumTLSVersion = .tlsv12
                tlsContext = try NIOSSLContext(configuration: settings)
            } catch {
                problem("tls", "cannot use \(tls.certificate) and \(tls.key): \(error)")
            }
        }

        guard problems.isEmpty, let signingKey, let clientMinter, upstreamTargets.count == declared.count else {
            throw ConfigurationErrors(file: configuration.sourcePath, problems: problems)
        }
        return GatewayState(
            configuration: configuration,
            rules: RuleSet(configuration.rules),
            credentials: credentials,
            signingKey: signingKey,
            clientMinter: clientMinter,
            trustedIssuers: TrustedIssuers(
                [
                    TrustedIssuers.Issuer(
                        verifier: TokenVerifier(
                            issuer: configuration.token.issuer, audience: configuration.token.service,
                            keys: [TrustedKey(signingKey)] + (nextKey.map { [TrustedKey($0)] } ?? [])
                                + previousKeys.filter { $0.publicKey != signingKey.publicKey }),
                        trustAccessClaim: true, isPortcullis: true)
                ] + issuers),
            upstreamTargets: upstreamTargets,
            nextKey: nextKey,
            tlsContext: tlsContext,
            trustedProxies: configuration.trustedProxies.compactMap(AddressRange.init),
            previousKeys: previousKeys.filter { $0.publicKey != signingKey.publicKey },
            workloadIssuers: workloadIssuers
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
