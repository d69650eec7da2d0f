import Foundation

/// The manifest cosign and skopeo store an image's key-based signatures in: an OCI (or Docker
/// schema 2) image manifest tagged `sha256-<hex>.sig` in the image's repository, one layer per
/// signature, each layer's blob the signed payload and its
/// `dev.cosignproject.cosign/signature` annotation the signature in base64.
public struct SignatureAttachment: Sendable {
    /// The layer media type of a simple-signing payload.
    public static let payloadMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
    /// The layer annotation holding the signature.
    public static let signatureAnnotation = "dev.cosignproject.cosign/signature"
    /// The largest attachment manifest read.
    public static let maximumManifestSize = 4 << 20
    /// The most signature layers looked at: more is refused, not skimmed.
    public static let maximumLayers = 64

    /// One signature.
    public struct Layer: Sendable, Equatable {
        /// The payload blob's digest (what is fetched, and what its bytes must hash to).
        public var digest: String
        /// The payload's size as the manifest declares it.
        public var size: Int
        /// The signature bytes; `nil` when the annotation is not valid base64.
        public var signature: [UInt8]?

        public init(digest: String, size: Int, signature: [UInt8]?) {
            self.digest = digest
            self.size = size
            self.signature = signature
        }
    }

    /// The signature layers, in manifest order.
    public var layers: [Layer]

    /// The tag of the signatures of the manifest `digest`: `sha256-<hex>.sig`.
    public static func tag(for digest: String) -> String {
        digest.replacingOccurrences(of: ":", with: "-") + ".sig"
    }

    /// Reads an attachment manifest.
    /// - Throws: ``PolicyError/Code/invalidSignature`` for an oversized or malformed manifest, or
    ///   one with more than ``maximumLayers`` signature layers.
    public init(parsing bytes: [UInt8]) throws(PolicyError) {
        guard bytes.count <= Self.maximumManifestSize else {
            throw PolicyError(.invalidSignature, "the signature manifest is larger than \(Self.maximumManifestSize) bytes")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else {
            throw PolicyError(.invalidSignature, "the signature manifest is not a JSON object")
        }
        guard let layers = object["layers"] as? [Any] else {
            throw PolicyError(.invalidSignature, "the signature manifest has no layers")
        }
        var result: [Layer] = []
        for case let layer as [String: Any] in layers where layer["mediaType"] as? String == Self.payloadMediaType {
            guard result.count < Self.maximumLayers else {
                throw PolicyError(.invalidSignature, "the signature manifest has more than \(Self.maximumLayers) signature layers")
            }
            guard let digest = layer["digest"] as? String, let size = layer["size"] as? Int, size >= 0 else { continue }
            let annotations = layer["annotations"] as? [String: Any]
            let encoded = annotations?[Self.signatureAnnotation] as? String
            result.append(Layer(digest: digest, size: size, signature: encoded.flatMap { Data(base64Encoded: $0) }.map(Array.init)))
        }
        self.layers = result
    }
}

/// Whether an image is signed by one of a content rule's keys, and if not, why.
public enum SignatureVerdict: Sendable, Equatable, CustomStringConvertible {
    /// A signature by `key` over a payload naming the manifest verifies.
    case verified(key: String)
    /// A signed index lists the manifest (`index`), and the index is verified.
    case listedBySignedIndex(index: String, key: String)
    /// No `sha256-<hex>.sig` attachment (and no signed index lists it).
    case unsigned
    /// Signatures exist; none verifies with an accepted key.
    case notByAcceptedKey(signatures: Int)
    /// A signature by an accepted key verifies, but its payload names another manifest (a
    /// signature copied from another image, or a tampered payload).
    case digestMismatch(signed: String)
    /// A signature by an accepted key verifies over a payload that is no container image signature.
    case wrongType(String)
    /// The attachment could not be read (malformed, oversized, a payload blob missing…).
    case invalid(String)

    /// Whether the manifest may be served.
    public var isVerified: Bool {
        switch self {
        case .verified, .listedBySignedIndex: true
        default: false
        }
    }

    /// The `result` label of `portcullis_signature_checks_total`.
    public var metricResult: String {
        switch self {
        case .verified: "verified"
        case .listedBySignedIndex: "verified_by_index"
        case .unsigned: "unsigned"
        case .notByAcceptedKey: "not_accepted_key"
        case .digestMismatch: "digest_mismatch"
        case .wrongType: "wrong_type"
        case .invalid: "invalid"
        }
    }

    public var description: String {
        switch self {
        case .verified(let key): "signed by \(key)"
        case .listedBySignedIndex(let index, let key): "listed by the index \(index), signed by \(key)"
        case .unsigned: "no signature"
        case .notByAcceptedKey(let count): "no signature by an accepted key (\(count) signature\(count == 1 ? "" : "s") checked)"
        case .digestMismatch(let signed): "digest mismatch: the accepted signature is for \(signed)"
        case .wrongType(let type): "the signed payload is not a container image signature (type \"\(type)\")"
        case .invalid(let reason): "unreadable signature: \(reason)"
        }
    }

    /// Checks the signatures of the manifest `digest`: each layer with its payload blob as fetched
    /// (`nil`: missing), against `keys`. A payload counts only when its bytes hash to the layer's
    /// digest and a key's signature over exactly those bytes verifies; only then is it parsed.
    public static func check(digest: String, layers: [(layer: SignatureAttachment.Layer, payload: [UInt8]?)], keys: [SignatureKey]) -> SignatureVerdict {
        var mismatch: SignatureVerdict?
        var missing = 0
        // A layer whose annotation is no base64 signature counts as a signature that does not verify.
        let signed = layers.filter { $0.layer.signature != nil }
        for (layer, payload) in signed {
            guard let payload else {
                missing += 1
                continue
            }
            guard let signature = layer.signature, ManifestDigest.sha256(payload) == layer.digest,
                let key = keys.first(where: { $0.isValidSignature(signature, over: payload) })
            else { continue }
            guard let parsed = try? SimpleSigningPayload(parsing: payload) else {
                mismatch = mismatch ?? .invalid("the payload signed by \(key.name) is not simple-signing JSON")
                continue
            }
            guard parsed.type == SimpleSigningPayload.cosignSignatureType else {
                mismatch = mismatch ?? .wrongType(parsed.type)
                continue
            }
            guard parsed.manifestDigest == digest else {
                mismatch = .digestMismatch(signed: parsed.manifestDigest)
                continue
            }
            return .verified(key: key.name)
        }
        if let mismatch { return mismatch }
        if layers.isEmpty { return .unsigned }
        if !signed.isEmpty && missing == signed.count { return .invalid("the payload blob\(missing == 1 ? " is" : "s are") missing from the registry") }
        return .notByAcceptedKey(signatures: layers.count)
    }
}
