import Crypto
import Foundation
import Policy

/// Makes image signatures the way `cosign sign --key` (legacy format) and `skopeo copy
/// --sign-by-sigstore-private-key` store them: the simple-signing payload cosign writes, an
/// ECDSA P-256 signature over its exact bytes, and an OCI manifest tagged `sha256-<hex>.sig`
/// whose one layer is the payload with the signature in its
/// `dev.cosignproject.cosign/signature` annotation. Checked against signatures cosign made
/// (`Tests/Fixtures/cosign`, `SignatureTests`).
public struct CosignSigner: Sendable {
    public let privateKey: P256.Signing.PrivateKey

    public init() {
        privateKey = P256.Signing.PrivateKey()
    }

    /// `cosign.pub`: the public key as a PEM `PUBLIC KEY`.
    public var publicKeyPEM: String { privateKey.publicKey.pemRepresentation }

    /// cosign's payload for `digest` in `repository`.
    public static func payload(for digest: String, repository: String) -> [UInt8] {
        SimpleSigningPayload.cosignBytes(manifestDigest: digest, repository: repository)
    }

    /// The base64 signature of exactly `payload`.
    public func signature(over payload: [UInt8]) throws -> String {
        Data(try privateKey.signature(for: payload).derRepresentation).base64EncodedString()
    }

    /// The config blob cosign writes (ggcr's empty image config listing the payloads).
    public static func config(payloads: [[UInt8]]) -> [UInt8] {
        let ids = payloads.map { "\"\(ManifestDigest.sha256($0))\"" }.joined(separator: ",")
        return Array(#"{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[\#(ids)]},"config":{}}"#.utf8)
    }

    /// The attachment manifest: one simple-signing layer per (payload, base64 signature).
    public static func attachment(config: [UInt8], layers: [(payload: [UInt8], signature: String)]) -> [UInt8] {
        let layerList = layers.map {
            #"{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":\#($0.payload.count),"digest":"\#(ManifestDigest.sha256($0.payload))","annotations":{"dev.cosignproject.cosign/signature":"\#($0.signature)"}}"#
        }.joined(separator: ",")
        return Array(
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":\#(config.count),"digest":"\#(ManifestDigest.sha256(config))"},"layers":[\#(layerList)]}"#
                .utf8)
    }
}

extension CosignSigner {
    /// A Sigstore bundle as `cosign sign --key` writes it from version 3 on: a DSSE envelope
    /// over an in-toto statement naming `digest`, signed over DSSE's pre-authentication encoding.
    public func bundle(for digest: String, predicateType: String = "https://sigstore.dev/cosign/sign/v1") throws -> [UInt8] {
        let hex = digest.split(separator: ":").last.map(String.init) ?? digest
        let statement = Array(#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"","digest":{"sha256":"\#(hex)"}}],"predicateType":"\#(predicateType)","predicate":{}}"#.utf8)
        let type = "application/vnd.in-toto+json"
        let pae = Array("DSSEv1 \(type.utf8.count) \(type) \(statement.count) ".utf8) + statement
        let signature = try self.signature(over: pae)
        return Array(
            #"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"test"}},"dsseEnvelope":{"payload":"\#(Data(statement).base64EncodedString())","payloadType":"\#(type)","signatures":[{"sig":"\#(signature)"}]}}"#
                .utf8)
    }

    /// The referrer manifest cosign 3 pushes by digest for a bundle: an OCI artifact whose subject is the signed manifest.
    public static func bundleReferrer(bundle: [UInt8], subject: String, subjectSize: Int) -> [UInt8] {
        Array(
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","digest":"\#(ManifestDigest.sha256(bundle))","size":\#(bundle.count)}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(subject)","size":\#(subjectSize)}}"#
                .utf8)
    }

    /// The referrers tag schema's index (`sha256-<hex>`) listing `referrers` (digest, size, artifactType).
    public static func referrersIndex(_ referrers: [(digest: String, size: Int, artifactType: String)]) -> [UInt8] {
        let entries = referrers.map {
            #"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#($0.digest)","size":\#($0.size),"artifactType":"\#($0.artifactType)"}"#
        }
        return Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[\#(entries.joined(separator: ","))]}"#.utf8)
    }
}

/// The registry API as a client speaks it through Portcullis with curl: blob uploads and manifest PUTs.
public struct RegistryClient: Sendable {
    public let deployment: Deployment
    /// `user:password`.
    public let credentials: String

    public init(_ deployment: Deployment, credentials: String) {
        self.deployment = deployment
        self.credentials = credentials
    }

    /// Uploads `bytes` as a blob of `repository` (POST, then PUT with the digest).
    public func upload(_ bytes: [UInt8], to repository: String) async throws {
        let start = try await deployment.curl(["-i", "-X", "POST", "-u", credentials], path: "/v2/\(repository)/blobs/uploads/").checked()
        guard let location = start.standardOutput.split(whereSeparator: \.isNewline).first(where: { $0.lowercased().hasPrefix("location:") })
            .map({ $0.dropFirst("location:".count).trimmingCharacters(in: .whitespaces) })
        else { throw HarnessError("no Location in the upload's answer: \(start.standardOutput)") }
        let path = location.hasPrefix("http") ? String(location[location.range(of: "/v2/")!.lowerBound...]) : location
        let file = try temporary(bytes)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let separator = path.contains("?") ? "&" : "?"
        let put = try await deployment.curl(
            ["-X", "PUT", "-u", credentials, "-H", "Content-Type: application/octet-stream", "--data-binary", "@\(file)", "-o", "/dev/null", "-w", "%{http_code}"],
            path: path + separator + "digest=" + ManifestDigest.sha256(bytes))
        guard put.standardOutput == "201" else { throw HarnessError("blob upload answered \(put.standardOutput)") }
    }

    /// PUTs `manifest` as `repository:reference`; returns the status.
    @discardableResult
    public func putManifest(_ manifest: [UInt8], mediaType: String = "application/vnd.oci.image.manifest.v1+json", to repository: String, reference: String) async throws -> Int {
        let file = try temporary(manifest)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let put = try await deployment.curl(
            ["-X", "PUT", "-u", credentials, "-H", "Content-Type: \(mediaType)", "--data-binary", "@\(file)", "-o", "/dev/null", "-w", "%{http_code}"],
            path: "/v2/\(repository)/manifests/\(reference)")
        return Int(put.standardOutput) ?? 0
    }

    /// Signs `digest` in `repository` with `signer` as cosign does: payload and config blobs, then the `.sig` manifest.
    public func sign(_ digest: String, in repository: String, with signer: CosignSigner, payloadFor: String? = nil) async throws {
        let payload = CosignSigner.payload(for: payloadFor ?? digest, repository: "127.0.0.1/\(repository)")
        try await attach([(payload, try signer.signature(over: payload))], to: digest, in: repository)
    }

    /// Stores an attachment with `layers` as the signatures of `digest`.
    public func attach(_ layers: [(payload: [UInt8], signature: String)], to digest: String, in repository: String) async throws {
        let config = CosignSigner.config(payloads: layers.map(\.payload))
        for payload in Set(layers.map(\.payload)) { try await upload(payload, to: repository) }
        try await upload(config, to: repository)
        let status = try await putManifest(CosignSigner.attachment(config: config, layers: layers), to: repository, reference: SignatureAttachment.tag(for: digest))
        guard status == 201 else { throw HarnessError("the signature manifest PUT answered \(status)") }
    }

    private func temporary(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("registry-client-\(UUID().uuidString.prefix(8))").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}
