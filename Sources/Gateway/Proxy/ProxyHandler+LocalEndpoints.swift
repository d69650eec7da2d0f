import Foundation
import NIOHTTP1
import Policy

/// State kept by the endpoints Portcullis answers itself instead of the registry.
final class LocalEndpoints: Sendable {
    /// Tag → digest maps for `tags/list?digest=`, per repository.
    let tagDigests = TagDigestCache()

    init() {}
}

extension ProxyHandler {
    /// Answers an authorized request without the registry when Portcullis serves it itself.
    ///
    /// Served here: `GET`/`HEAD /v2/<name>/tags/list?digest=<digest>`, the tags of a repository
    /// whose manifest digest is `<digest>`, as `{"name", "digest", "tags"}` with the tags sorted
    /// (the caller needed pull on the repository to get here). The plain `tags/list`, without a
    /// `digest` parameter, is the registry's and is forwarded untouched.
    /// - Returns: whether the request was answered.
    func answerLocally(
        _ request: IncomingRequest, scopes: [Scope], account: String, state: GatewayState, writer: ResponseWriter, log: inout RequestLog
    ) async throws -> Bool {
        guard Self.isAnsweredLocally(method: request.head.method, path: request.path, query: request.query),
            let digest = request.query.flatMap({ QueryParameters($0).first("digest") }),
            let route = try? Route(path: request.path), let repository = route.repository
        else { return false }
        try await answerTagsOfDigest(digest, repository: repository, scopes: scopes, account: account, state: state, writer: writer, log: &log)
        return true
    }

    /// Whether Portcullis answers this request itself: the tags of a digest
    /// (`GET`/`HEAD /v2/<name>/tags/list?digest=`).
    static func isAnsweredLocally(method: HTTPMethod, path: String, query: String?) -> Bool {
        guard let query, method == .GET || method == .HEAD, path.hasSuffix("/tags/list"), QueryParameters(query).first("digest") != nil,
            let route = try? Route(path: path)
        else { return false }
        return route.endpoint == .tags
    }

    /// Called once the registry answered a forwarded request with `status`, before the client
    /// has the answer: a manifest pushed or deleted through Portcullis changes its repository's
    /// tags, so their cached digests go (on every replica with the postgres store), and a push is
    /// recorded in `retention.push_times` or the store's push ledger.
    func didForward(method: HTTPMethod, path: String, status: Int, headers: HTTPHeaders, account: String, state: GatewayState) {
        guard (200..<300).contains(status), method == .PUT || method == .DELETE,
            let route = try? Route(path: path), case .manifest(let reference) = route.endpoint, let repository = route.repository
        else { return }
        localEndpoints.tagDigests.invalidate(repository.value)
        signatureCaches.forgetTags(of: repository.value)
        shared?.tagsMoved(in: repository.value)
        // The registry names the digest of what it stored; a push by digest names it in its path.
        guard method == .PUT, shared != nil || state.configuration.pushTimesPath != nil,
            let digest = headers.first(name: "docker-content-digest") ?? (Self.isDigest(reference) ? reference : nil)
        else { return }
        // RFC 3339 with milliseconds, without Foundation's ISO8601DateFormatter: making one per
        // push (ICU) was two thirds of the push's own cost in the profile.
        let now = Date().timeIntervalSince1970
        let whole = now.rounded(.down)
        let time = String(decoding: InternetTime.bytes(seconds: Int(whole), milliseconds: min(Int((now - whole) * 1000), 999)), as: UTF8.self)
        let record = PushRecord(repository: repository.value, digest: digest, reference: reference, time: time)
        if let shared {
            shared.recordPush(record, account: account, time: now)
        } else if let path = state.configuration.pushTimesPath {
            pushTimes.record(record, to: path)
        }
    }

    /// Whether `text` is a digest as distribution's grammar writes it (`algorithm:encoded`).
    static func isDigest(_ text: String) -> Bool {
        guard let colon = text.firstIndex(of: ":") else { return false }
        let algorithm = text[..<colon]
        let encoded = text[text.index(after: colon)...]
        let isLowerAlphanumeric: (Character) -> Bool = { ("a"..."z").contains($0) || ("0"..."9").contains($0) }
        guard !algorithm.isEmpty, !encoded.isEmpty,
            algorithm.allSatisfy({ isLowerAlphanumeric($0) || "+._-".contains($0) }),
            let first = algorithm.first, let last = algorithm.last, isLowerAlphanumeric(first), isLowerAlphanumeric(last),
            encoded.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "=_-".contains($0)) })
        else { return false }
        return algorithm != "sha256" || (encoded.count == 64 && encoded.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) })
    }

    private func answerTagsOfDigest(
        _ digest: String, repository: RepositoryName, scopes: [Scope], account: String, state: GatewayState, writer: ResponseWriter,
        log: inout RequestLog
    ) async throws {
        guard Self.isDigest(digest) else {
            log.outcome = "tags of digest: invalid digest"
            try await writer.respond(
                .digestInvalid, message: "\"\(digest)\" is not a valid digest")
            return
        }
        let cache = localEndpoints.tagDigests
        let now = Date().timeIntervalSince1970
        let digests: [String: String]
        let cached: Bool
        if let hit = cache.lookup(repository.value, now: now) {
            digests = hit
            cached = true
        } else {
            let epoch = cache.begin()
            let upstream = state.configuration.upstream
            let api = RegistryAPI.minting(for: account, state: state, client: client)
            do {
                digests = try await api.tagDigests(of: repository)
            } catch let error as RegistryAPIError {
                log.outcome = "tags of digest: \(error.message)"
                switch error.code {
                case .notFound:
                    try await writer.respond(
                        .nameUnknown,
                        message: "repository name not known to registry", detail: .text(repository.value))
                case .unreachable:
                    logger.error("registry unreachable", metadata: log.metadata)
                    try await writer.respond(
                        .unavailable,
                        message: "the registry at \(upstream.url) is unavailable")
                default:
                    logger.error("tags of digest failed", metadata: log.metadata)
                    try await writer.respond(
                        .upstreamFailed, message: "the registry's tags could not be read", detail: .text(error.message))
                }
                return
            }
            cache.store(repository.value, digests: digests, since: epoch, now: now)
            cached = false
        }
        let tags = digests.filter { $0.value == digest }.keys.sorted()
        let json = try JSONSerialization.data(
            withJSONObject: ["name": repository.value, "digest": digest, "tags": tags], options: [.withoutEscapingSlashes, .sortedKeys])
        try await writer.respond(
            status: .ok, headers: ["docker-distribution-api-version": "registry/2.0"], body: Array(json), contentType: "application/json; charset=utf-8")
        log.outcome = "tags of digest: \(tags.count) of \(digests.count) tags (\(cached ? "cached" : "from the registry"))"
    }
}
