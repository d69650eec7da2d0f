import Policy
import PortcullisConfiguration

/// One registry Portcullis forwards to (an entry of `upstreams:`), with what requests need to
/// reach it: where it is, the minter of tokens in its version's format, and its token cache.
final class UpstreamTarget: Sendable {
    let configuration: GatewayConfiguration.Upstream
    /// Mints tokens in the format the upstream's pinned version accepts.
    let minter: TokenMinter
    /// The key ``minter`` signs with: the upstream's own, or `token.key`.
    let signingKey: SigningKey
    /// The PEM certificate chain file of ``signingKey``, for the registry's rootcertbundle.
    let certificatePath: String?
    /// Where the forwarding core connects (`url`, parsed once).
    let endpoint: UpstreamEndpoint
    /// Tokens minted with ``minter``; a new state starts with an empty cache.
    let tokens = UpstreamTokenCache()

    var name: String { configuration.name }

    init(
        configuration: GatewayConfiguration.Upstream, minter: TokenMinter, signingKey: SigningKey, certificatePath: String?, endpoint: UpstreamEndpoint
    ) {
        self.configuration = configuration
        self.minter = minter
        self.signingKey = signingKey
        self.certificatePath = certificatePath
        self.endpoint = endpoint
    }
}
