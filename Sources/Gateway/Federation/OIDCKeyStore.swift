import AsyncHTTPClient
import Foundation
import NIOCore
import Policy

/// The signing keys of OIDC issuers fetched over HTTP (`jwks_url`, `discovery: true`), cached
/// across configuration reloads. Fetched on first use, again after ``maximumAge``, and again
/// when a token names a key the cached set lacks (the issuer rotated), at most once per
/// ``minimumInterval`` so that tokens with made-up `kid`s cannot make Portcullis hammer the issuer.
actor OIDCKeyStore {
    private struct Entry {
        var keys: [TrustedKey]
        var fetched: ContinuousClock.Instant
    }

    static let maximumAge: Duration = .seconds(3600)
    static let minimumInterval: Duration = .seconds(5)
    /// A JWKS or discovery document larger than this is refused.
    static let maximumDocumentSize = 1 << 20

    private let client: HTTPClient
    private var entries: [String: Entry] = [:]
    private var lastAttempt: [String: ContinuousClock.Instant] = [:]

    init(client: HTTPClient) {
        self.client = client
    }

    /// The keys of `issuer`; with `refresh`, fetched again unless that was done within ``minimumInterval``.
    /// - Throws: ``PolicyError/Code/directoryUnavailable`` when they cannot be fetched.
    func keys(of issuer: WorkloadIssuer, refresh: Bool = false) async throws -> [TrustedKey] {
        if case .fixed = issuer.source { return issuer.fixedKeys }
        let name = issuer.policy.issuer
        let now = ContinuousClock.now
        if let entry = entries[name], now - entry.fetched < Self.maximumAge {
            guard refresh, lastAttempt[name].map({ now - $0 >= Self.minimumInterval }) ?? true else { return entry.keys }
        }
        lastAttempt[name] = now
        do {
            let url: String
            switch issuer.source {
            case .fixed: return issuer.fixedKeys
            case .url(let jwksURL): url = jwksURL
            case .discovery:
                let document = try await fetch(name.hasSuffix("/") ? name + ".well-known/openid-configuration" : name + "/.well-known/openid-configuration")
                guard let object = (try? JSONSerialization.jsonObject(with: Data(document))) as? [String: Any],
                    let jwksURI = object["jwks_uri"] as? String
                else { throw PolicyError(.directoryUnavailable, "the discovery document of \(name) has no jwks_uri") }
                guard (object["issuer"] as? String) == name else {
                    throw PolicyError(.directoryUnavailable, "the discovery document of \(name) names issuer \(object["issuer"] ?? "none")")
                }
                url = jwksURI
            }
            let keys = try PublicKeyMaterial.parseJSONWebKeySet(try await fetch(url)).map { kid, key in
                TrustedKey(publicKey: key, keyIDs: kid.map { [$0] } ?? [])
            }
            entries[name] = Entry(keys: keys, fetched: now)
            return keys
        } catch let error as PolicyError where error.code == .directoryUnavailable {
            if let entry = entries[name] { return entry.keys }
            throw error
        } catch {
            // A failed refresh keeps the keys that were good; a first fetch that fails is a 503.
            if let entry = entries[name] { return entry.keys }
            throw PolicyError(.directoryUnavailable, "the keys of OIDC issuer \(name) cannot be fetched: \(error)")
        }
    }

    private func fetch(_ url: String) async throws -> [UInt8] {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "accept", value: "application/json")
        let response = try await client.execute(request, timeout: .seconds(10))
        guard response.status == .ok else {
            throw PolicyError(.directoryUnavailable, "GET \(url) answered \(response.status.code)")
        }
        let body = try await response.body.collect(upTo: Self.maximumDocumentSize)
        return Array(buffer: body)
    }
}
