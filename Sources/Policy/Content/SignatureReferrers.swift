import Foundation

/// Signatures stored as OCI 1.1 referrers of a manifest (artifacts whose `subject` is it), as
/// `cosign sign` writes them from version 3 on: found through the referrers API where the
/// registry serves it, else through the referrers tag schema's index at `sha256-<hex>`
/// (distribution 2.8 and 3.x have no referrers API; cosign then keeps that index itself).
public enum SignatureReferrers {
    /// cosign's simple-signing layers as a referrer (`--new-bundle-format=false` with OCI 1.1 referrers).
    public static let simpleSigningArtifactType = "application/vnd.dev.cosign.artifact.sig.v1+json"
    /// A Sigstore bundle (cosign 3's default): a DSSE envelope over an in-toto statement.
    public static let bundleArtifactType = "application/vnd.dev.sigstore.bundle.v0.3+json"
    /// The most referrers looked at.
    public static let maximumReferrers = 64

    /// A signature artifact the index lists.
    public struct Referrer: Sendable, Equatable {
        public var digest: String
        public var artifactType: String
    }

    /// The referrers tag schema's tag for `digest`: `sha256-<hex>`.
    public static func fallbackTag(for digest: String) -> String {
        digest.replacingOccurrences(of: ":", with: "-")
    }

    /// The signature artifacts an image index of referrers lists (others are left out).
    /// - Throws: ``PolicyError/Code/invalidSignature`` for an index that is no JSON index, or lists too many.
    public static func signatureArtifacts(in index: [UInt8]) throws(PolicyError) -> [Referrer] {
        guard index.count <= SignatureAttachment.maximumManifestSize,
            let object = (try? JSONSerialization.jsonObject(with: Data(index))) as? [String: Any],
            let manifests = object["manifests"] as? [Any]
        else { throw PolicyError(.invalidSignature, "the referrers index is not an image index") }
        var result: [Referrer] = []
        for case let entry as [String: Any] in manifests {
            guard let type = entry["artifactType"] as? String, type == simpleSigningArtifactType || type == bundleArtifactType,
                let digest = entry["digest"] as? String
            else { continue }
            guard result.count < maximumReferrers else {
                throw PolicyError(.invalidSignature, "the referrers index lists more than \(maximumReferrers) signatures")
            }
            result.append(Referrer(digest: digest, artifactType: type))
        }
        return result
    }

    /// The bundle layer's digest of a bundle referrer's manifest, and the manifest's subject.
    public static func bundleLayer(of manifest: [UInt8]) -> (digest: String, size: Int, subject: String?)? {
        guard manifest.count <= SignatureAttachment.maximumManifestSize,
            let object = (try? JSONSerialization.jsonObject(with: Data(manifest))) as? [String: Any],
            let layers = object["layers"] as? [[String: Any]],
            let layer = layers.first(where: { $0["mediaType"] as? String == bundleArtifactType }),
            let digest = layer["digest"] as? String, let size = layer["size"] as? Int
        else { return nil }
        return (digest, size, (object["subject"] as? [String: Any])?["digest"] as? String)
    }
}

/// A Sigstore bundle signed with a key (`cosign sign --key`, cosign 3): a DSSE envelope whose
/// payload is an in-toto statement about the signed manifest.
public struct SigstoreBundle: Sendable {
    /// The largest bundle read (Rekor entries and certificates make it a few KiB).
    public static let maximumSize = 1 << 20
    /// The predicate cosign's image signatures carry.
    public static let signaturePredicate = "https://sigstore.dev/cosign/sign/v1"

    /// `dsseEnvelope.payloadType`.
    public var payloadType: String
    /// The decoded `dsseEnvelope.payload`: the statement's exact bytes.
    public var payload: [UInt8]
    /// The decoded `dsseEnvelope.signatures[].sig`.
    public var signatures: [[UInt8]]

    /// Reads a bundle.
    /// - Throws: ``PolicyError/Code/invalidSignature`` for anything that is not a DSSE bundle.
    public init(parsing bytes: [UInt8]) throws(PolicyError) {
        guard bytes.count <= Self.maximumSize else { throw PolicyError(.invalidSignature, "the signature bundle is larger than \(Self.maximumSize) bytes") }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any],
            let envelope = object["dsseEnvelope"] as? [String: Any],
            let type = envelope["payloadType"] as? String,
            let encoded = envelope["payload"] as? String, let payload = Data(base64Encoded: encoded),
            let signatures = envelope["signatures"] as? [[String: Any]]
        else { throw PolicyError(.invalidSignature, "the signature bundle has no DSSE envelope") }
        self.payloadType = type
        self.payload = Array(payload)
        self.signatures = signatures.prefix(SignatureAttachment.maximumLayers).compactMap { ($0["sig"] as? String).flatMap { Data(base64Encoded: $0) }.map(Array.init) }
    }

    /// DSSE's pre-authentication encoding: what the signature is over.
    public var preAuthenticationEncoding: [UInt8] {
        Array("DSSEv1 \(payloadType.utf8.count) \(payloadType) \(payload.count) ".utf8) + payload
    }

    /// The verdict on the manifest `digest` with `keys`: a signature over the envelope must verify,
    /// and the in-toto statement must be cosign's signature predicate with `digest` as its subject.
    public func verdict(digest: String, keys: [SignatureKey]) -> SignatureVerdict {
        let signed = preAuthenticationEncoding
        guard let key = keys.first(where: { key in signatures.contains { key.isValidSignature($0, over: signed) } }) else {
            return .notByAcceptedKey(signatures: signatures.count)
        }
        guard payloadType == "application/vnd.in-toto+json",
            let statement = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any],
            let subjects = statement["subject"] as? [[String: Any]]
        else { return .invalid("the bundle signed by \(key.name) holds no in-toto statement") }
        let predicate = statement["predicateType"] as? String ?? ""
        guard predicate == Self.signaturePredicate else { return .wrongType(predicate) }
        let hex = digest.hasPrefix("sha256:") ? String(digest.dropFirst("sha256:".count)) : ""
        let named = subjects.compactMap { ($0["digest"] as? [String: Any])?["sha256"] as? String }
        guard named.contains(hex) else { return .digestMismatch(signed: named.first.map { "sha256:" + $0 } ?? "nothing") }
        return .verified(key: key.name)
    }
}
