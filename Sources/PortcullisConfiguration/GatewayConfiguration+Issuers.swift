import Yams

extension GatewayConfiguration {
    /// An external token issuer whose tokens clients may present (migration shim).
    package struct ExternalIssuer: Sendable {
        /// The `iss` value.
        package var issuer: String
        /// The `aud` values accepted.
        package var audiences: [String]
        /// PEM certificate files: trusted as keys and as `x5c` chain anchors.
        package var certificates: [String] = []
        /// PEM public key files.
        package var publicKeys: [String] = []
        /// A JWKS file; each key is trusted under its `kid`.
        package var jwks: String?
        /// Take the token's `access` claim as is instead of intersecting it with the rules.
        package var trustAccessClaim = false
    }
}

extension ConfigurationLoader.Reader {
    /// `issuers` (optional): the external issuers whose entries were valid, in order.
    mutating func readIssuers(_ node: Node?) -> [GatewayConfiguration.ExternalIssuer] {
        var issuers: [GatewayConfiguration.ExternalIssuer] = []
        if let node {
            if let sequence = node.sequence {
                for (index, item) in sequence.enumerated() {
                    if let issuer = readIssuer(item, "issuers[\(index)]") { issuers.append(issuer) }
                }
            } else {
                problem("issuers", "must be a list of issuers")
            }
        }
        return issuers
    }

    /// One entry of `issuers`: `nil` when it is not a mapping or lacks `issuer`.
    mutating func readIssuer(_ node: Node, _ keyPath: String) -> GatewayConfiguration.ExternalIssuer? {
        guard
            let section = mapping(
                node, keyPath, allowed: ["issuer", "audiences", "certificates", "public_keys", "jwks", "trust_access_claim"])
        else { return nil }
        let issuer = string(section["issuer"], "\(keyPath).issuer", required: true)
        let audiences = stringList(section["audiences"], "\(keyPath).audiences") ?? []
        if audiences.isEmpty { problem("\(keyPath).audiences", "is required: the aud values this issuer's tokens carry") }
        let certificates = (stringList(section["certificates"], "\(keyPath).certificates") ?? []).enumerated().compactMap {
            path(Node($0.element), "\(keyPath).certificates[\($0.offset)]")
        }
        let publicKeys = (stringList(section["public_keys"], "\(keyPath).public_keys") ?? []).enumerated().compactMap {
            path(Node($0.element), "\(keyPath).public_keys[\($0.offset)]")
        }
        let jwks = path(section["jwks"], "\(keyPath).jwks")
        if certificates.isEmpty && publicKeys.isEmpty && jwks == nil {
            problem(keyPath, "needs trust material: certificates, public_keys and/or jwks")
        }
        var trust = false
        if let flag = section["trust_access_claim"] {
            if let value = flag.bool { trust = value } else { problem("\(keyPath).trust_access_claim", "must be true or false") }
        }
        guard let issuer else { return nil }
        return GatewayConfiguration.ExternalIssuer(
            issuer: issuer, audiences: audiences, certificates: certificates, publicKeys: publicKeys, jwks: jwks,
            trustAccessClaim: trust)
    }
}
