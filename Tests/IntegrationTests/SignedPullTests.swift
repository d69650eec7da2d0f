import Foundation
import Policy
import Testing
import TestSupport

/// `content[].signed_by` against the real registry 2.8.2: pulls served only when the manifest is
/// signed in cosign's format by an accepted key, with skopeo and curl.
@Suite("content rules: signed-only pulls in front of registry 2.8.2")
struct SignedPullTests {
    static let users = ["ci": "ci-secret", "puller": "puller-secret"]
    static let rules = """
          - {account: ci, name: "**", actions: [pull, push, delete]}
          - {account: "puller*", name: "**", actions: [pull]}
        """

    struct Fixture: Sendable {
        var deployment: Deployment
        var release: CosignSigner
        var other: CosignSigner
        var ci: RegistryClient
        /// Images pushed to `prod/app`, by name: `signed`, `unsigned`, `other-key`, `tampered`, `copied`, `amd64`, `arm64`, `stray`.
        var digests: [String: String]
        /// The index listing `amd64` and `arm64`, signed.
        var index: String
    }

    static let setup = Task { () throws -> Fixture in
        let release = CosignSigner()
        let other = CosignSigner()
        let keys = FileManager.default.temporaryDirectory.appendingPathComponent("signed-pull-keys-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        try Data(release.publicKeyPEM.utf8).write(to: URL(fileURLWithPath: keys + "/release.pub"))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keys + "/release.pub")
        let deployment = try await Deployment.start(
            users: users, rules: rules,
            extraConfiguration: """
                content:
                  - repositories: ["prod/**"]
                    signed_by: [\(keys)/release.pub]
                """)
        let ci = RegistryClient(deployment, credentials: deployment.credentials("ci"))
        var digests: [String: String] = [:]
        var sizes: [String: Int] = [:]
        for name in ["signed", "unsigned", "other-key", "tampered", "copied", "amd64", "arm64", "stray", "hostile-many", "hostile-base64", "hostile-json", "hostile-missing", "bundle", "bundle-other-key", "bundle-attestation", "legacy-referrer"] {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("oci-signed-\(name)-\(UUID().uuidString.prefix(8))").path
            let image = try OCIImageLayout.write(to: path, tag: "v1", layers: [["file.txt": Data("image \(name)\n".utf8)]], label: name)
            try await deployment.push(path, credentials: deployment.credentials("ci"), to: "prod/app:\(name)").checked()
            digests[name] = image.manifestDigest
            sizes[name] = try Data(contentsOf: URL(fileURLWithPath: path + "/blobs/sha256/" + image.manifestDigest.dropFirst(7))).count
        }
        try await ci.sign(digests["signed"]!, in: "prod/app", with: release)
        try await ci.sign(digests["other-key"]!, in: "prod/app", with: other)
        // A valid signature by the release key over a payload that names another image.
        try await ci.sign(digests["tampered"]!, in: "prod/app", with: release, payloadFor: digests["unsigned"]!)
        // The attachment of `signed`, copied byte for byte to `copied`.
        let signedPayload = CosignSigner.payload(for: digests["signed"]!, repository: "127.0.0.1/prod/app")
        try await ci.attach([(signedPayload, try release.signature(over: signedPayload))], to: digests["copied"]!, in: "prod/app")

        // A two-platform index, signed once (as `cosign sign` signs a tag).
        let children = ["amd64", "arm64"].map {
            #"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(digests[$0]!)","size":\#(sizes[$0]!),"platform":{"architecture":"\#($0)","os":"linux"}}"#
        }
        let index = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[\#(children.joined(separator: ","))]}"#.utf8)
        let indexStatus = try await ci.putManifest(index, mediaType: "application/vnd.oci.image.index.v1+json", to: "prod/app", reference: "multi")
        guard indexStatus == 201 else { throw HarnessError("index PUT answered \(indexStatus)") }
        let indexDigest = ManifestDigest.sha256(index)
        try await ci.sign(indexDigest, in: "prod/app", with: release)

        // Hostile attachments: thousands of layers, a signature that is not base64, a signed
        // payload that is not JSON, and a payload blob deleted after the attachment was stored.
        let manyPayload = CosignSigner.payload(for: digests["hostile-many"]!, repository: "prod/app")
        let manySignature = try other.signature(over: manyPayload)
        try await ci.attach(Array(repeating: (manyPayload, manySignature), count: 3000), to: digests["hostile-many"]!, in: "prod/app")
        let base64Payload = CosignSigner.payload(for: digests["hostile-base64"]!, repository: "prod/app")
        try await ci.attach([(base64Payload, "%%% not base64 %%%")], to: digests["hostile-base64"]!, in: "prod/app")
        let notJSON = Array("this is not JSON \(UUID())".utf8)
        try await ci.attach([(notJSON, try release.signature(over: notJSON))], to: digests["hostile-json"]!, in: "prod/app")
        let missingPayload = CosignSigner.payload(for: digests["hostile-missing"]!, repository: "prod/app/missing")
        try await ci.attach([(missingPayload, try release.signature(over: missingPayload))], to: digests["hostile-missing"]!, in: "prod/app")
        _ = try await deployment.curl(["-X", "DELETE", "-u", deployment.credentials("ci"), "-o", "/dev/null"], path: "/v2/prod/app/blobs/\(ManifestDigest.sha256(missingPayload))").checked()

        // cosign 3's signatures as OCI 1.1 referrers, which distribution keeps through the
        // referrers tag schema (`sha256-<hex>` → an index of referrers): a Sigstore bundle by the
        // release key, one by another key, an attestation (another predicate) by the release key,
        // and the legacy simple-signing layers as a referrer.
        let empty = Array("{}".utf8)
        try await ci.upload(empty, to: "prod/app")
        func referrerIndex(_ name: String, _ entries: [(digest: String, size: Int, artifactType: String)]) async throws {
            let status = try await ci.putManifest(
                CosignSigner.referrersIndex(entries), mediaType: "application/vnd.oci.image.index.v1+json", to: "prod/app",
                reference: SignatureReferrers.fallbackTag(for: digests[name]!))
            guard status == 201 else { throw HarnessError("referrers index PUT answered \(status)") }
        }
        for (name, signer, predicate) in [("bundle", release, SigstoreBundle.signaturePredicate), ("bundle-other-key", other, SigstoreBundle.signaturePredicate), ("bundle-attestation", release, "https://slsa.dev/provenance/v1")] {
            let bundle = try signer.bundle(for: digests[name]!, predicateType: predicate)
            try await ci.upload(bundle, to: "prod/app")
            let referrer = CosignSigner.bundleReferrer(bundle: bundle, subject: digests[name]!, subjectSize: sizes[name]!)
            let status = try await ci.putManifest(referrer, to: "prod/app", reference: ManifestDigest.sha256(referrer))
            guard status == 201 else { throw HarnessError("bundle referrer PUT answered \(status)") }
            try await referrerIndex(name, [(ManifestDigest.sha256(referrer), referrer.count, SignatureReferrers.bundleArtifactType)])
        }
        let legacyPayload = CosignSigner.payload(for: digests["legacy-referrer"]!, repository: "prod/app")
        let legacyConfig = CosignSigner.config(payloads: [legacyPayload])
        try await ci.upload(legacyPayload, to: "prod/app")
        try await ci.upload(legacyConfig, to: "prod/app")
        let legacy = CosignSigner.attachment(config: legacyConfig, layers: [(legacyPayload, try release.signature(over: legacyPayload))])
        guard try await ci.putManifest(legacy, to: "prod/app", reference: ManifestDigest.sha256(legacy)) == 201 else { throw HarnessError("legacy referrer PUT failed") }
        try await referrerIndex("legacy-referrer", [(ManifestDigest.sha256(legacy), legacy.count, SignatureReferrers.simpleSigningArtifactType)])
        return Fixture(deployment: deployment, release: release, other: other, ci: ci, digests: digests, index: indexDigest)
    }

    struct Answer: Equatable, CustomStringConvertible {
        var status: Int
        var code: String?
        var message: String?
        var digest: String?
        var description: String { "\(status) \(code ?? "-") \(message ?? "") \(digest ?? "")" }
    }

    /// A manifest GET (or HEAD) through Portcullis.
    func pull(_ deployment: Deployment, _ reference: String, method: String = "GET", credentials: String) async throws -> Answer {
        let accept = "application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json"
        let result = try await deployment.curl(
            (method == "HEAD" ? ["-I"] : []) + ["-i", "-u", credentials, "-H", "Accept: \(accept)"], path: "/v2/prod/app/manifests/\(reference)")
        let text = result.standardOutput
        let (head, body) = text.range(of: "\r\n\r\n").map { (String(text[..<$0.lowerBound]), String(text[$0.upperBound...])) } ?? (text, "")
        let lines = head.split(whereSeparator: \.isNewline)
        let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        let digest = lines.first { $0.lowercased().hasPrefix("docker-content-digest:") }.map { $0.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces) }
        let error = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]).flatMap { ($0["errors"] as? [[String: Any]])?.first }
        return Answer(status: status, code: error?["code"] as? String, message: error?["message"] as? String, digest: digest)
    }

    @Test("a manifest signed by the release key is served by tag and by digest (the tag's digest, checked, is what is fetched); GET and HEAD alike")
    func signedIsServed() async throws {
        let fixture = try await Self.setup.value
        let puller = fixture.deployment.credentials("puller")
        for reference in ["signed", fixture.digests["signed"]!] {
            for method in ["GET", "HEAD"] {
                let answer = try await pull(fixture.deployment, reference, method: method, credentials: puller)
                #expect(answer.status == 200 && answer.digest == fixture.digests["signed"], "\(method) \(reference): \(answer)")
            }
        }
        let metrics = try await fixture.deployment.curl([], path: "/metrics").standardOutput
        #expect(metrics.contains(#"portcullis_signature_checks_total{result="verified"}"#), "\(metrics)")
    }

    @Test(
        "refusals name the digest, the repository and the reason: unsigned, signed by another key, a payload naming another image, an attachment copied from another image",
        arguments: [("unsigned", "no signature"), ("other-key", "no signature by an accepted key"), ("tampered", "digest mismatch"), ("copied", "digest mismatch")])
    func refusals(_ name: String, _ reason: String) async throws {
        let fixture = try await Self.setup.value
        let digest = fixture.digests[name]!
        for reference in [name, digest] {
            let answer = try await pull(fixture.deployment, reference, credentials: fixture.deployment.credentials("puller"))
            #expect(answer.status == 403 && answer.code == "DENIED", "\(reference): \(answer)")
            #expect(answer.message?.contains("manifest \(digest) in prod/app is not served: \(reason)") == true, "\(reference): \(answer)")
            #expect(answer.message?.contains("content[0] signed_by") == true, "\(answer)")
        }
        #expect(fixture.deployment.auditLog.contains(digest), "the refusal is audited")
        #expect(try await pull(fixture.deployment, "\(name)", method: "HEAD", credentials: fixture.deployment.credentials("puller")).status == 403)
    }

    @Test("signatures stored as OCI 1.1 referrers (found through the referrers tag schema, distribution has no referrers API): a cosign 3 bundle by the release key and a legacy referrer are served; a bundle by another key and an attestation are not")
    func referrers() async throws {
        let fixture = try await Self.setup.value
        let puller = fixture.deployment.credentials("puller")
        for name in ["bundle", "legacy-referrer"] {
            let answer = try await pull(fixture.deployment, name, credentials: puller)
            #expect(answer.status == 200 && answer.digest == fixture.digests[name], "\(name): \(answer)")
        }
        let otherKey = try await pull(fixture.deployment, "bundle-other-key", credentials: puller)
        #expect(otherKey.status == 403 && otherKey.message?.contains("no signature by an accepted key") == true, "\(otherKey)")
        let attestation = try await pull(fixture.deployment, "bundle-attestation", credentials: puller)
        #expect(attestation.status == 403 && attestation.message?.contains("https://slsa.dev/provenance/v1") == true, "\(attestation)")
    }

    @Test("a signed index is served, and so are its children pulled by digest; a manifest no signed index lists is not")
    func signedIndexCoversItsChildren() async throws {
        let fixture = try await Self.setup.value
        let puller = fixture.deployment.credentials("puller")
        let index = try await pull(fixture.deployment, "multi", credentials: puller)
        #expect(index.status == 200 && index.digest == fixture.index, "\(index)")
        for child in ["amd64", "arm64"] {
            let answer = try await pull(fixture.deployment, fixture.digests[child]!, credentials: puller)
            #expect(answer.status == 200, "\(child): \(answer)")
        }
        let stray = try await pull(fixture.deployment, fixture.digests["stray"]!, credentials: puller)
        #expect(stray.status == 403 && stray.message?.contains("no signature") == true, "\(stray)")
    }

    @Test("hostile attachments are refused, not crashed on: 3000 signature layers, a signature that is not base64, a signed payload that is not JSON, a payload blob missing; Portcullis keeps serving")
    func hostileAttachments() async throws {
        let fixture = try await Self.setup.value
        let puller = fixture.deployment.credentials("puller")
        let expectations = [
            ("hostile-many", "more than 64 signature layers"), ("hostile-base64", "no signature by an accepted key"),
            ("hostile-json", "not simple-signing JSON"), ("hostile-missing", "missing from the registry"),
        ]
        for (name, reason) in expectations {
            let answer = try await pull(fixture.deployment, name, credentials: puller)
            #expect(answer.status == 403 && answer.message?.contains(reason) == true, "\(name): \(answer)")
        }
        #expect(try await pull(fixture.deployment, "signed", credentials: puller).status == 200)
    }

    @Test("skopeo copies a signed image and is refused an unsigned one, showing the reason; blobs are not gated; an account that may push (the signer) pulls unsigned manifests")
    func skopeoAndExemptions() async throws {
        let fixture = try await Self.setup.value
        let deployment = fixture.deployment
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("signed-copy-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: target) }
        try await deployment.skopeo(["copy", "--src-tls-verify=false", "--src-creds", deployment.credentials("puller"), "docker://\(deployment.host)/prod/app:signed", "oci:\(target):signed"]).checked()
        let refused = try await deployment.skopeo(["copy", "--src-tls-verify=false", "--src-creds", deployment.credentials("puller"), "docker://\(deployment.host)/prod/app:unsigned", "oci:\(target):unsigned"])
        #expect(refused.status != 0 && refused.standardError.contains("is not served: no signature"), "\(refused.standardError)")
        // The unsigned image's config blob is served: blobs are content-addressed and only useful through a manifest.
        let manifest = try await deployment.curl(["-u", deployment.credentials("ci"), "-H", "Accept: application/vnd.oci.image.manifest.v1+json"], path: "/v2/prod/app/manifests/unsigned").checked()
        let object = try JSONSerialization.jsonObject(with: manifest.standardOutputData) as? [String: Any]
        let config = try #require((object?["config"] as? [String: Any])?["digest"] as? String)
        let blob = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("puller")], path: "/v2/prod/app/blobs/\(config)")
        #expect(blob.standardOutput == "200")
        #expect(try await pull(deployment, "unsigned", credentials: deployment.credentials("ci")).status == 200)
        // The signatures themselves are readable: they are not signed.
        let signatureTag = SignatureAttachment.tag(for: fixture.digests["signed"]!)
        let signatures = try await pull(deployment, signatureTag, credentials: deployment.credentials("puller"))
        #expect(signatures.status == 200, "\(signatures)")
    }

    @Test("every signature case has the same outcome on the first request (verified in the request loop) and the next ones (cached credential and cached verdict, on the event loop), with Basic credentials and a token")
    func fastAndSlowPathsAgree() async throws {
        let fixture = try await Self.setup.value
        let deployment = fixture.deployment
        var users = Self.users
        let cases = ["signed", "unsigned", "other-key", "tampered", "multi", fixture.digests["amd64"]!, fixture.digests["stray"]!]
        for index in cases.indices { users["puller\(index)"] = "puller\(index)-secret" }
        try deployment.writeUsers(users)
        for (index, reference) in cases.enumerated() {
            let credentials = "puller\(index):puller\(index)-secret"
            let first = try await pull(deployment, reference, credentials: credentials)
            let second = try await pull(deployment, reference, credentials: credentials)
            let tokenAnswer = try await deployment.curl(["-u", credentials], path: "/token?service=portcullis&scope=repository:prod/app:pull")
            let token = try #require((try JSONSerialization.jsonObject(with: tokenAnswer.standardOutputData) as? [String: Any])?["token"] as? String)
            var bearer: [Answer] = []
            for _ in 0..<2 {
                let result = try await deployment.curl(
                    ["-i", "-H", "Authorization: Bearer \(token)", "-H", "Accept: application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json", "-o", "/dev/null", "-w", "%{http_code}"],
                    path: "/v2/prod/app/manifests/\(reference)")
                bearer.append(Answer(status: Int(result.standardOutput) ?? 0))
            }
            #expect(second == first, "\(reference): \(first) then \(second)")
            #expect(bearer.allSatisfy { $0.status == first.status }, "\(reference): \(first) with Basic, \(bearer) with a token")
        }
    }

    @Test("portcullis verify says with the deployment's configuration whether a manifest would be served, with which key or why not")
    func verifyCommand() async throws {
        let fixture = try await Self.setup.value
        let binary = try portcullisBinary()
        let signed = try await Command(binary, ["verify", "--config", fixture.deployment.configurationPath, "prod/app:signed"], timeout: .seconds(60)).runInBackground()
        #expect(signed.status == 0 && signed.standardOutput.contains("served: signed by"), "\(signed)")
        #expect(signed.standardOutput.contains("prod/app@\(fixture.digests["signed"]!)"), "\(signed)")
        let unsigned = try await Command(binary, ["verify", "--config", fixture.deployment.configurationPath, "prod/app@\(fixture.digests["other-key"]!)"], timeout: .seconds(60)).runInBackground()
        #expect(unsigned.status == 1 && unsigned.standardOutput.contains("refused: manifest \(fixture.digests["other-key"]!) in prod/app is not served: no signature by an accepted key"), "\(unsigned)")
        let bundle = try await Command(binary, ["verify", "--config", fixture.deployment.configurationPath, "prod/app:bundle"], timeout: .seconds(60)).runInBackground()
        #expect(bundle.status == 0, "\(bundle)")
        let elsewhere = try await Command(binary, ["verify", "--config", fixture.deployment.configurationPath, "dev/app:latest"], timeout: .seconds(60)).runInBackground()
        #expect(elsewhere.status == 0 && elsewhere.standardOutput.contains("no content rule requires signatures"), "\(elsewhere)")
    }
}
