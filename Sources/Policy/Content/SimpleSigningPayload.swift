import Foundation

/// The payload a cosign key-based signature signs: the "simple signing" JSON
/// `{"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":…},"type":…},"optional":…}`.
///
/// It is read only after its signature has verified over its exact bytes, and never written
/// back: what was signed is the bytes, not this value.
public struct SimpleSigningPayload: Sendable, Equatable {
    /// The only `critical.type` a container image signature has.
    public static let cosignSignatureType = "cosign container image signature"
    /// The largest payload read: real ones are a few hundred bytes.
    public static let maximumSize = 64 * 1024

    /// `critical.image.docker-manifest-digest`: the manifest the signature is about.
    public var manifestDigest: String
    /// `critical.type`.
    public var type: String
    /// `critical.identity.docker-reference`: informational (cosign ignores it; skopeo writes a tag into it).
    public var dockerReference: String

    public init(manifestDigest: String, type: String, dockerReference: String) {
        self.manifestDigest = manifestDigest
        self.type = type
        self.dockerReference = dockerReference
    }

    /// Parses `bytes`.
    /// - Throws: ``PolicyError/Code/invalidSignature`` saying what is missing or malformed.
    public init(parsing bytes: [UInt8]) throws(PolicyError) {
        guard bytes.count <= Self.maximumSize else {
            throw PolicyError(.invalidSignature, "the signature payload is larger than \(Self.maximumSize) bytes")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else {
            throw PolicyError(.invalidSignature, "the signature payload is not a JSON object")
        }
        guard let critical = object["critical"] as? [String: Any] else {
            throw PolicyError(.invalidSignature, "the signature payload has no critical object")
        }
        guard let type = critical["type"] as? String else {
            throw PolicyError(.invalidSignature, "the signature payload has no critical.type")
        }
        guard let image = critical["image"] as? [String: Any], let digest = image["docker-manifest-digest"] as? String else {
            throw PolicyError(.invalidSignature, "the signature payload has no critical.image.docker-manifest-digest")
        }
        let identity = critical["identity"] as? [String: Any]
        self.init(manifestDigest: digest, type: type, dockerReference: identity?["docker-reference"] as? String ?? "")
    }

    /// The payload as cosign writes it for `manifestDigest` in `repository` (Go's compact
    /// `encoding/json`, fields in cosign's order, `"optional":null`): what tests sign.
    public static func cosignBytes(manifestDigest: String, repository: String) -> [UInt8] {
        Array(
            #"{"critical":{"identity":{"docker-reference":"\#(repository)"},"image":{"docker-manifest-digest":"\#(manifestDigest)"},"type":"cosign container image signature"},"optional":null}"#
                .utf8)
    }
}
