import Policy

/// Fuzzes what signed-only pulls read from the registry: the simple-signing payload, the `.sig`
/// attachment manifest, a referrers index and a Sigstore bundle. Anything may be refused; nothing
/// may crash, hang, or come out beyond the stated bounds, and a parsed payload names what its
/// JSON says. A checked verdict for bytes no key signed is never a verification.
enum SignatureHarness {
    static let key = try! SignatureKey(
        pem: """
            -----BEGIN PUBLIC KEY-----
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEFNLqFhf4fiN6o/glAuYnq2jYUeL0
            vRuLu/z39pmbVwS9ff5AYnlwaP9sxREajdLY9ynM6G1sy6AAmb7Z63TsLg==
            -----END PUBLIC KEY-----
            """, name: "containers-image-fixture-cosign.pub")

    static func run(_ input: [UInt8]) throws(FuzzFinding) {
        if let payload = try? SimpleSigningPayload(parsing: input) {
            guard input.count <= SimpleSigningPayload.maximumSize else {
                throw FuzzFinding("signature", "a payload of \(input.count) bytes was parsed past the limit")
            }
            _ = payload.manifestDigest
        }
        if let attachment = try? SignatureAttachment(parsing: input) {
            guard attachment.layers.count <= SignatureAttachment.maximumLayers else {
                throw FuzzFinding("signature", "an attachment with \(attachment.layers.count) signature layers was accepted")
            }
            let verdict = SignatureVerdict.check(
                digest: "sha256:" + String(repeating: "0", count: 64), layers: attachment.layers.map { ($0, input) }, keys: [key])
            guard !verdict.isVerified else {
                throw FuzzFinding("signature", "an attachment verified with a key that signed nothing: \(verdict)")
            }
        }
        if let referrers = try? SignatureReferrers.signatureArtifacts(in: input) {
            guard referrers.count <= SignatureReferrers.maximumReferrers else {
                throw FuzzFinding("signature", "a referrers index listing \(referrers.count) signatures was accepted")
            }
        }
        if let bundle = try? SigstoreBundle(parsing: input) {
            let verdict = bundle.verdict(digest: "sha256:" + String(repeating: "0", count: 64), keys: [key])
            guard !verdict.isVerified else {
                throw FuzzFinding("signature", "a bundle verified with a key that signed nothing: \(verdict)")
            }
        }
    }
}
