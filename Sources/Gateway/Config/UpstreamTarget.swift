import Policy
import PortcullisConfiguration

/// One registry Portcullis forwards to (an entry of `upstreams:`), with what requests need to
/// reach it: where it is, the minter of tokens in its version's format, and its token cache.
final class UpstreamTarget: Sendable {
    let configuration: GatewayConfiguration.Upstream
    /// Mints tokens in the format the upstream's pinned version accepts.
    let minter: TokenMinter
    /// Where the forwarding core connects (`url`, parsed once).
    let endpoint: UpstreamEndpoint
    /// Tokens minted with ``minter``; a new state starts with an empty cache.
    let tokens = UpstreamTokenCache()

    var name: String { configuration.name }

    init(configuration: GatewayConfiguration.Upstream, minter: TokenMinter, endpoint: UpstreamEndpoint) {
        self.configuration = configuration
        self.minter = minter
        self.endpoint = endpoint
    }
}
