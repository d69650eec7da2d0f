import Foundation
import NIOCore
import Policy

extension ProxyHandler {
    /// The largest manifest read when a content rule needs its digest: distribution's own
    /// limit for a manifest PUT.
    static let manifestBodyLimit = 4 << 20

    /// What a content rule's check against the registry came to.
    enum ContentVerdict {
        /// Forward the request: with the body read here, when the check needed it, the
        /// protected tag held (``TagPushLocks``) until the registry has answered, and the
        /// manifest asked for by the digest that was checked (`servedDigest`, for a tag).
        case proceed(body: ByteBuffer?, heldTag: String?, servedDigest: String? = nil)
        /// A content rule refuses the request.
        case refused(ContentRefusal)
        /// The check could not be made: the request is refused, never forwarded unchecked.
        case failed(RegistryError, message: String, outcome: String)
    }

    /// Asks the registry what a content rule needs to know of `request` before it may go there:
    /// for a push to a protected tag, the digest the tag points to now (one `HEAD`); for a
    /// manifest delete, whether a protected tag points to the manifest.
    func checkContent(_ check: ContentCheck, request: IncomingRequest, account: String, state: GatewayState) async -> ContentVerdict {
        switch check {
        case .refused(let refusal):
            return .refused(refusal)
        case .signature(let repository, let reference, let rule):
            let api = RegistryAPI.minting(for: account, state: state, client: client, target: state.upstream(for: repository.value, health: health))
            let now = Date().timeIntervalSince1970
            let verifier = SignatureVerifier(caches: signatureCaches)
            do {
                var digest = reference
                if !reference.contains(":") {
                    if let known = signatureCaches.digest(ofTag: reference, in: repository.value, now: now) {
                        digest = known
                    } else {
                        // No such tag: the registry answers the pull itself.
                        guard let resolved = try await api.digest(of: reference, in: repository) else { return .proceed(body: nil, heldTag: nil) }
                        signatureCaches.remember(tag: reference, digest: resolved, in: repository.value, now: now)
                        digest = resolved
                    }
                }
                let verdict = try await verifier.verdict(for: digest, in: repository, rule: rule, api: api, now: now)
                observability.metrics.signatureCheck(result: verdict.metricResult)
                guard verdict.isVerified else {
                    return .refused(.notSigned(repository: repository, digest: digest, rule: rule, verdict: verdict))
                }
                return .proceed(body: nil, heldTag: nil, servedDigest: digest == reference ? nil : digest)
            } catch {
                observability.metrics.signatureCheck(result: "unavailable")
                return .failed(
                    .unavailable,
                    message: "\(repository.value) is served signed only (\(rule.name)): the registry could not say whether \(reference) is signed, and the pull waits until it can",
                    outcome: "content rule: signature check failed: \(error)")
            }
        case .tagPush(let tag):
            var body = ByteBuffer()
            do {
                for try await part in request.body {
                    guard body.readableBytes + part.readableBytes <= Self.manifestBodyLimit else {
                        return .failed(
                            .manifestInvalid, message: "the manifest is larger than \(Self.manifestBodyLimit >> 20) MiB",
                            outcome: "content rule: manifest over \(Self.manifestBodyLimit) bytes")
                    }
                    var part = part
                    body.writeBuffer(&part)
                }
            } catch {
                return .failed(.unsupportedRequest, message: "the manifest could not be read", outcome: "content rule: manifest body not read: \(error)")
            }
            let pushed = ManifestDigest.sha256(body.readableBytesView)
            let key = "\(tag.repository.value):\(tag.tag)"
            await tagPushLocks.acquire(key)
            if let shared {
                do {
                    tagPushLocks.attach(try await shared.store.acquireTagPushLock(key), to: key)
                } catch {
                    tagPushLocks.release(key)
                    observability.metrics.stateStoreFailure(operation: "tag_lock")
                    logger.error(
                        "push to an immutable tag refused: the state store that serializes it across replicas is unavailable",
                        metadata: ["repository": "\(tag.repository.value)", "tag": "\(tag.tag)", "reason": "\(error)"])
                    return .failed(
                        .unavailable,
                        message: "\(tag.reason): the state store that orders pushes to it across replicas is unavailable, and a push to it waits until it answers",
                        outcome: "content rule: tag lock not taken: \(error)")
                }
            }
            let api = RegistryAPI.minting(for: account, state: state, client: client, target: state.upstream(for: tag.repository.value, health: health))
            do {
                let current = try await api.digest(of: tag.tag, in: tag.repository)
                if let refusal = tag.verdict(pushed: pushed, current: current) {
                    tagPushLocks.release(key)
                    return .refused(refusal)
                }
                return .proceed(body: body, heldTag: key)
            } catch {
                tagPushLocks.release(key)
                return .failed(
                    .unavailable,
                    message: "\(tag.reason): the registry could not say what it points to, and a push to it waits until it can",
                    outcome: "content rule: tag lookup failed: \(error)")
            }
        case .manifestDelete(let repository, let digest, let rule):
            let api = RegistryAPI.minting(for: account, state: state, client: client, target: state.upstream(for: repository.value, health: health))
            do {
                for tag in try await api.tags(of: repository) {
                    guard let pattern = rule.protection(of: tag), try await api.digest(of: tag, in: repository) == digest else { continue }
                    return .refused(.taggedManifestDelete(ImmutableTag(repository: repository, tag: tag, rule: rule, pattern: pattern), digest: digest))
                }
                return .proceed(body: nil, heldTag: nil)
            } catch let error as RegistryAPIError where error.code == .notFound {
                // No such repository: the registry answers the delete itself.
                return .proceed(body: nil, heldTag: nil)
            } catch {
                return .failed(
                    .unavailable,
                    message: "\(repository.value) has immutable tags (\(rule.name)): the registry could not say which point to \(digest), and a delete waits until it can",
                    outcome: "content rule: tag lookup failed: \(error)")
            }
        }
    }
}
