import AsyncHTTPClient
import Foundation
import Policy

extension RegistryAPI {
    /// An API client for `upstream.url` whose tokens are minted by Portcullis for `subject`,
    /// each for exactly the access of the call, and reused through the state's token cache.
    /// - Parameters:
    ///   - subject: the token's `sub`, as the registry logs it.
    ///   - state: the configuration and keys to mint with.
    ///   - client: an HTTP client with redirects disabled.
    ///   - target: the upstream to call; the primary when absent.
    static func minting(for subject: String, state: GatewayState, client: HTTPClient, target: UpstreamTarget? = nil) -> RegistryAPI {
        let target = target ?? state.primaryUpstream
        let upstream = target.configuration
        return RegistryAPI(client: client, baseURL: upstream.url) { scopes in
            let now = Date()
            return try target.tokens.token(subject: subject, scopes: scopes, lifetime: upstream.tokenLifetime, now: now.timeIntervalSince1970) {
                try target.minter.mint(
                    TokenClaims(
                        issuer: upstream.issuer, subject: subject, audience: upstream.service, scopes: scopes, now: now,
                        lifetime: upstream.tokenLifetime, id: UUID().uuidString))
            }.0
        }
    }
}
