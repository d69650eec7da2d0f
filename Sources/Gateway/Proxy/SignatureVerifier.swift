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
        let keys = SignatureCaches.keySet(rule.signedBy)
        if let known = caches.verdict(digest, in: repository.value, keys: keys, now: now) { return known }
        let manifest: RegistryAPI.Manifest
        do {
            manifest = try await api.manifest(SignatureAttachment.tag(for: digest), in: repository)
        } catch let error as RegistryAPIError where error.code == .notFound {
            return .unsigned
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
        let verdict = SignatureVerdict.check(digest: digest, layers: layers, keys: rule.signedBy)
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

    static let indexMediaTypes: Set<String> = ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"]
}
