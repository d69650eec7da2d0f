import Foundation
import NIOSSL
import Policy
import PortcullisConfiguration

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
    /// - Parameter robots: the robots of the postgres state store (`users.robots` is not used then).
    static func load(_ configuration: GatewayConfiguration, previousKeys: [TrustedKey] = [], robots: [RobotCredential]? = nil) throws -> GatewayState {
        var problems = StateProblems()
        let signingKey = Self.signingKey(configuration.token, &problems)
        let nextKey = Self.nextKey(configuration.token, &problems)
        let (credentials, workloadIssuers) = Self.users(configuration, robots: robots, &problems)
        let clientMinter = Self.clientMinter(signingKey)
        let upstreamTargets = Self.upstreamTargets(configuration, signingKey: signingKey, &problems)
        let issuers = Self.externalIssuers(configuration.issuers, ownIssuer: configuration.token.issuer, &problems)
        let tlsContext = Self.tlsContext(configuration.tls, &problems)

        guard problems.list.isEmpty, let signingKey, let clientMinter, let upstreamTargets else {
            throw ConfigurationErrors(file: configuration.sourcePath, problems: problems.list)
        }
        let previousKeys = previousKeys.filter { $0.publicKey != signingKey.publicKey }
        return GatewayState(
            configuration: configuration,
            rules: RuleSet(configuration.rules),
            credentials: credentials,
            signingKey: signingKey,
            clientMinter: clientMinter,
            trustedIssuers: TrustedIssuers(
                [Self.ownIssuer(configuration.token, signingKey: signingKey, nextKey: nextKey, previousKeys: previousKeys)] + issuers),
            upstreamTargets: upstreamTargets,
            nextKey: nextKey,
            tlsContext: tlsContext,
            trustedProxies: Self.trustedProxies(configuration.trustedProxies),
            previousKeys: previousKeys,
            workloadIssuers: workloadIssuers
        )
    }
}
