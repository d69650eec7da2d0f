import Foundation
import Policy

/// Decides whether a manifest is signed by one of a content rule's keys, asking the registry
/// for its `sha256-<hex>.sig` attachment and payloads when ``SignatureCaches`` does not know.
///
/// A verified index records its children as verified: a multi-arch image signed once (as
/// `cosign sign` signs a tag) is pulled by platform digests its index lists.
struct SignatureVerifier: Sendable {
    let caches: SignatureCaches

    /// The verdict on `digest` in `repository`.
    /// - Throws: ``RegistryAPIError`` when the registry cannot be asked (unreachable, an unexpected status).
    func verdict(for digest: String, in repository: RepositoryName, rule: ContentRule, api: RegistryAPI, now: Double) async throws -> SignatureVerdict {
        let keys = rule.signedByFingerprints
        if let known = caches.verdict(digest, in: repository.value, keys: keys, now: now) { return known }
        var verdict = try await attachmentVerdict(digest, in: repository, tag: SignatureAttachment.tag(for: digest), rule: rule, api: api)
        if !verdict.isVerified, let referred = try await referrersVerdict(digest, in: repository, rule: rule, api: api),
            referred.isVerified || verdict == .unsigned
        {
            verdict = referred
        }
        guard case .verified(let key) = verdict else { return verdict }
        caches.remember(verdict, for: digest, in: repository.value, keys: keys, now: now)
        // An index: its children are served as signed too.
        if let signed = try? await api.manifest(digest, in: repository), Self.indexMediaTypes.contains(signed.mediaType) {
            for child in ManifestIndex.children(of: signed.body) {
                caches.remember(.listedBySignedIndex(index: digest, key: key), for: child, in: repository.value, keys: keys, now: now)
            }
        }
        return verdict
    }

    /// The verdict of a simple-signing attachment manifest (the `.sig` tag, or a referrer by digest).
    private func attachmentVerdict(_ digest: String, in repository: RepositoryName, tag: String, rule: ContentRule, api: RegistryAPI) async throws -> SignatureVerdict {
        let manifest: RegistryAPI.Manifest
        do {
            manifest = try await api.manifest(tag, in: repository)
        } catch let error as RegistryAPIError where error.code == .notFound {
            return .unsigned
        } catch let error as RegistryAPIError where error.code == .malformedResponse {
            return .invalid(error.message)
        }
        let attachment: SignatureAttachment
        do {
            attachment = try SignatureAttachment(parsing: manifest.body)
        } catch {
            return .invalid(error.message)
        }
        var layers: [(layer: SignatureAttachment.Layer, payload: [UInt8]?)] = []
        for layer in attachment.layers {
            guard layer.signature != nil, layer.size <= SimpleSigningPayload.maximumSize else {
                layers.append((layer, nil))
                continue
            }
            do {
                layers.append((layer, try await api.blob(layer.digest, in: repository, limit: SimpleSigningPayload.maximumSize)))
            } catch let error as RegistryAPIError where error.code != .unreachable {
                // Missing, oversized or refused: this signature counts for nothing.
                layers.append((layer, nil))
            }
        }
        return SignatureVerdict.check(digest: digest, layers: layers, keys: rule.signedBy)
    }

    /// The verdict of the signatures stored as OCI 1.1 referrers of `digest` (the referrers API,
    /// else the referrers tag schema's index), or `nil` when there are none.
    private func referrersVerdict(_ digest: String, in repository: RepositoryName, rule: ContentRule, api: RegistryAPI) async throws -> SignatureVerdict? {
        var index = try await api.referrers(of: digest, in: repository)
        if index == nil {
            do {
                index = try await api.manifest(SignatureReferrers.fallbackTag(for: digest), in: repository).body
            } catch let error as RegistryAPIError where error.code == .notFound {
                return nil
            }
        }
        guard let index else { return nil }
        let referrers: [SignatureReferrers.Referrer]
        do {
            referrers = try SignatureReferrers.signatureArtifacts(in: index)
        } catch {
            return .invalid(error.message)
        }
        var best: SignatureVerdict?
        for referrer in referrers {
            let verdict: SignatureVerdict
            if referrer.artifactType == SignatureReferrers.simpleSigningArtifactType {
                verdict = try await attachmentVerdict(digest, in: repository, tag: referrer.digest, rule: rule, api: api)
            } else {
                verdict = try await bundleVerdict(digest, referrer: referrer.digest, in: repository, rule: rule, api: api)
            }
            if verdict.isVerified { return verdict }
            if best == nil || best == .unsigned { best = verdict }
        }
        return best
    }

    /// The verdict of one Sigstore bundle referrer.
    private func bundleVerdict(_ digest: String, referrer: String, in repository: RepositoryName, rule: ContentRule, api: RegistryAPI) async throws -> SignatureVerdict {
        do {
            let manifest = try await api.manifest(referrer, in: repository)
            guard let layer = SignatureReferrers.bundleLayer(of: manifest.body), layer.size <= SigstoreBundle.maximumSize else {
                return .invalid("the bundle referrer \(referrer) has no bundle layer")
            }
            if let subject = layer.subject, subject != digest { return .digestMismatch(signed: subject) }
            let bundle = try SigstoreBundle(parsing: try await api.blob(layer.digest, in: repository, limit: SigstoreBundle.maximumSize))
            return bundle.verdict(digest: digest, keys: rule.signedBy)
        } catch let error as PolicyError {
            return .invalid(error.message)
        } catch let error as RegistryAPIError where error.code != .unreachable {
            return .invalid(error.message)
        }
    }

    static let indexMediaTypes: Set<String> = ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"]
}
