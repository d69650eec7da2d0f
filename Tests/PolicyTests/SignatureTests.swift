import Crypto
import Foundation
import Policy
import Testing

/// The signature vectors in Tests/Fixtures/cosign (made by cosign, skopeo and others; see its README).
private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/cosign").path

private func bytes(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: fixtures + "/" + path)))
}

private func key(_ path: String) throws -> SignatureKey {
    try SignatureKey(pem: String(decoding: try bytes(path), as: UTF8.self), name: path)
}

/// A layer of a `.sig` attachment holding `payload` signed with `signature`.
private func layer(_ payload: [UInt8], _ signature: [UInt8]?) -> SignatureAttachment.Layer {
    SignatureAttachment.Layer(digest: ManifestDigest.sha256(payload), size: payload.count, signature: signature)
}

@Suite("Image signatures: cosign's simple signing, checked against signatures cosign and skopeo made")
struct SignatureTests {
    @Test(
        "every real vector verifies with its key over its exact payload bytes, and not with another key",
        arguments: [
            ("p256-cosign-ci-valid", "ci-cosign.pub"), ("p256-cosign-ci-valid-2", "ci-cosign.pub"), ("p256-skopeo-ci-with-tag", "ci-cosign.pub"),
            ("p256-cosign-ci-key-rekor", "ci-cosign2.pub"), ("p256-sigstore-rs", "p256-sigstore-rs/key.pub"),
            ("rsa2048-pkcs1v15-sigstore-rs-suse", "rsa2048-pkcs1v15-sigstore-rs-suse/key.pub"),
            ("SYNTHETIC-ed25519-openssl", "SYNTHETIC-ed25519-openssl/key.pub"),
        ])
    func vectorsVerify(_ directory: String, _ keyPath: String) throws {
        let payload = try bytes("\(directory)/payload.json")
        let signature = try bytes("\(directory)/signature.der")
        #expect(try key(keyPath).isValidSignature(signature, over: payload))
        let other = keyPath == "ci-cosign2.pub" ? "ci-cosign.pub" : "ci-cosign2.pub"
        #expect(try !key(other).isValidSignature(signature, over: payload))
        // One byte more (a trailing newline) and it no longer verifies: the bytes are what is signed.
        #expect(try !key(keyPath).isValidSignature(signature, over: payload + [0x0A]))
        // The base64 in the annotation decodes to the same signature.
        let base64 = String(decoding: try bytes("\(directory)/signature.b64"), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Data(base64Encoded: base64).map(Array.init) == signature)
    }

    @Test("P-384 verifies over SHA-256 (cosign before 2.6, skopeo) and over SHA-384 (cosign 2.6 and later)")
    func p384BothHashes() throws {
        let payload = try bytes("SYNTHETIC-p384-openssl/payload.json")
        let p384 = try key("SYNTHETIC-p384-openssl/key.pub")
        #expect(p384.kind == "ECDSA P-384")
        #expect(p384.isValidSignature(try bytes("SYNTHETIC-p384-openssl/signature-sha256.der"), over: payload))
        #expect(p384.isValidSignature(try bytes("SYNTHETIC-p384-openssl/signature-sha384.der"), over: payload))
    }

    @Test("the verdict: verified for the manifest the payload names; a digest mismatch for another (the re-indented manifest of containers/image's fixtures); unsigned; not by an accepted key")
    func verdicts() throws {
        let payload = try bytes("p256-cosign-ci-valid/payload.json")
        let signature = try bytes("p256-cosign-ci-valid/signature.der")
        let manifest = ManifestDigest.sha256(try bytes("p256-cosign-ci-valid/manifest.json"))
        #expect(manifest == "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00")
        let keys = [try key("ci-cosign2.pub"), try key("ci-cosign.pub")]
        #expect(SignatureVerdict.check(digest: manifest, layers: [(layer(payload, signature), payload)], keys: keys) == .verified(key: "ci-cosign.pub"))
        let modified = ManifestDigest.sha256(try bytes("NEG-modified-manifest/manifest.json"))
        #expect(SignatureVerdict.check(digest: modified, layers: [(layer(payload, signature), payload)], keys: keys) == .digestMismatch(signed: manifest))
        #expect(SignatureVerdict.check(digest: manifest, layers: [], keys: keys) == .unsigned)
        #expect(SignatureVerdict.check(digest: manifest, layers: [(layer(payload, signature), payload)], keys: [try key("ci-cosign2.pub")]) == .notByAcceptedKey(signatures: 1))
        // A payload whose bytes do not hash to the layer digest counts for nothing.
        var other = layer(payload, signature)
        other.digest = modified
        #expect(SignatureVerdict.check(digest: manifest, layers: [(other, payload)], keys: keys) == .notByAcceptedKey(signatures: 1))
        #expect(SignatureVerdict.check(digest: manifest, layers: [(layer(payload, signature), nil)], keys: keys).metricResult == "invalid")
        // Malformed base64 in the annotation: that layer has no signature.
        #expect(SignatureVerdict.check(digest: manifest, layers: [(layer(payload, nil), payload)], keys: keys) == .notByAcceptedKey(signatures: 1))
    }

    @Test("signatures made by the tests' own signer follow cosign's format exactly: the payload bytes of cosign for the vector's digest, the .sig tag, and the attachment manifest read back")
    func ownSignerMatchesCosign() throws {
        // sigstore/sigstore's payload test expects exactly these bytes.
        let expected = #"{"critical":{"identity":{"docker-reference":"example.com/test/image"},"image":{"docker-manifest-digest":"sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f"},"type":"cosign container image signature"},"optional":null}"#
        #expect(SimpleSigningPayload.cosignBytes(manifestDigest: "sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f", repository: "example.com/test/image") == Array(expected.utf8))
        // The cosign-made vector has the same shape for its own repository and digest.
        let vector = try bytes("p256-cosign-ci-valid/payload.json")
        #expect(SimpleSigningPayload.cosignBytes(manifestDigest: "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00", repository: "192.168.64.2:5000/cosign-signed-single-sample") == vector)
        #expect(SignatureAttachment.tag(for: "sha256:634a") == "sha256-634a.sig")

        // A fresh key signs; the attachment manifest as cosign writes it reads back and verifies.
        let privateKey = P256.Signing.PrivateKey()
        let signer = try SignatureKey(pem: privateKey.publicKey.pemRepresentation, name: "ci.pub")
        let payload = SimpleSigningPayload.cosignBytes(manifestDigest: "sha256:" + String(repeating: "1", count: 64), repository: "prod/app")
        let signature = Array(try privateKey.signature(for: payload).derRepresentation)
        let manifest = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":\#(payload.count),"digest":"\#(ManifestDigest.sha256(payload))","annotations":{"dev.cosignproject.cosign/signature":"\#(Data(signature).base64EncodedString())"}}]}"#
        let attachment = try SignatureAttachment(parsing: Array(manifest.utf8))
        #expect(attachment.layers.count == 1)
        let verdict = SignatureVerdict.check(digest: "sha256:" + String(repeating: "1", count: 64), layers: attachment.layers.map { ($0, payload) }, keys: [signer])
        #expect(verdict == .verified(key: "ci.pub"))
    }

    @Test("hostile attachments are refused, not crashed on: oversized, not JSON, thousands of layers; hostile payloads likewise")
    func hostileInputs() throws {
        #expect(throws: PolicyError.self) { try SignatureAttachment(parsing: Array(repeating: 0x20, count: SignatureAttachment.maximumManifestSize + 1)) }
        #expect(throws: PolicyError.self) { try SignatureAttachment(parsing: Array("{\"layers\":".utf8)) }
        #expect(throws: PolicyError.self) { try SignatureAttachment(parsing: Array("[1,2,3]".utf8)) }
        let many = (0..<5000).map { _ in #"{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":1,"digest":"sha256:00","annotations":{"dev.cosignproject.cosign/signature":"AA=="}}"# }
        #expect(throws: PolicyError.self) { try SignatureAttachment(parsing: Array(#"{"layers":[\#(many.joined(separator: ","))]}"#.utf8)) }
        let badBase64 = try SignatureAttachment(parsing: Array(#"{"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":1,"digest":"sha256:00","annotations":{"dev.cosignproject.cosign/signature":"not base64!"}}]}"#.utf8))
        #expect(badBase64.layers.first?.signature == nil)
        #expect(throws: PolicyError.self) { try SimpleSigningPayload(parsing: Array(repeating: 0x20, count: SimpleSigningPayload.maximumSize + 1)) }
        #expect(throws: PolicyError.self) { try SimpleSigningPayload(parsing: Array(#"{"critical":{"type":"cosign container image signature"}}"#.utf8)) }
        #expect(throws: PolicyError.self) { try SimpleSigningPayload(parsing: Array("\u{0}\u{ff}".utf8)) }
        #expect(throws: PolicyError.self) { try SignatureKey(pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", name: "bad") }
    }
}
