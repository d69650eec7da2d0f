import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Policy

/// The few registry API calls Portcullis makes on its own behalf, straight to the registry
/// (`upstream.url`) with tokens it mints itself.
///
/// `authorize` returns a token for exactly the access one call needs (pull to read, delete to
/// delete, the catalog scope to list repositories), so the registry's own logs show what each
/// call was allowed to do.
struct RegistryAPI: Sendable {
    /// The client; redirects must be disabled (blob redirects are followed here, without the token).
    let client: HTTPClient
    /// The registry's base URL, without a trailing slash.
    let baseURL: String
    /// Returns a registry token for the given access.
    let authorize: @Sendable ([Scope]) throws -> String
    /// How long one call may take.
    var timeout: TimeAmount = .seconds(60)
    /// How many manifest lookups run at once.
    var concurrency = 8

    /// The manifest media types Portcullis reads: OCI and Docker v2 manifests and indexes.
    static let manifestMediaTypes = [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]

    /// The largest manifest or config read.
    static let documentLimit = 16 << 20

    /// A manifest as fetched.
    struct Manifest: Sendable {
        /// `Docker-Content-Digest` (the digest asked for, when fetched by digest).
        var digest: String
        /// The `Content-Type` the registry announced.
        var mediaType: String
        /// The bytes.
        var body: [UInt8]
    }

    /// Every tag of `repository`, following `Link` pagination when the registry paginates.
    /// - Throws: ``RegistryAPIError`` (``RegistryAPIError/Code/notFound`` for an unknown repository).
    func tags(of repository: RepositoryName) async throws -> [String] {
        var path = "/v2/\(repository.value)/tags/list"
        var tags: [String] = []
        for _ in 0..<10_000 {
            let (status, headers, body) = try await send(.GET, path, scopes: [Self.pull(repository)], limit: 64 << 20)
            guard status == .ok else { throw Self.failure(status, body, what: "listing the tags of \(repository)") }
            guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                throw RegistryAPIError(.malformedResponse, "the registry's tag list for \(repository) is not a JSON object", status: 200)
            }
            tags += object["tags"] as? [String] ?? []
            guard let next = Self.nextLink(headers) else { break }
            path = next
        }
        return tags
    }

    /// The digest the tag (or digest) `reference` resolves to, `nil` when it does not exist.
    func digest(of reference: String, in repository: RepositoryName) async throws -> String? {
        let (status, headers, body) = try await send(
            .HEAD, "/v2/\(repository.value)/manifests/\(reference)", scopes: [Self.pull(repository)], accept: Self.manifestMediaTypes,
            limit: 0)
        if status == .notFound { return nil }
        guard status == .ok else { throw Self.failure(status, body, what: "resolving \(repository):\(reference)") }
        guard let digest = headers.first(name: "docker-content-digest") else {
            throw RegistryAPIError(.malformedResponse, "the registry sent no Docker-Content-Digest for \(repository):\(reference)", status: 200)
        }
        return digest
    }

    /// Every tag of `repository` with the digest it points to. Tags deleted while the lookups run
    /// are left out.
    func tagDigests(of repository: RepositoryName) async throws -> [String: String] {
        let tags = try await tags(of: repository)
        return try await withThrowingTaskGroup(of: (String, String?).self) { group in
            var result: [String: String] = [:]
            var pending = tags[...]
            func next() {
                guard let tag = pending.popFirst() else { return }
                group.addTask { (tag, try await digest(of: tag, in: repository)) }
            }
            for _ in 0..<concurrency { next() }
            while let (tag, digest) = try await group.next() {
                if let digest { result[tag] = digest }
                next()
            }
            return result
        }
    }

    /// The manifest `reference` points to.
    func manifest(_ reference: String, in repository: RepositoryName) async throws -> Manifest {
        let (status, headers, body) = try await send(
            .GET, "/v2/\(repository.value)/manifests/\(reference)", scopes: [Self.pull(repository)], accept: Self.manifestMediaTypes,
            limit: Self.documentLimit)
        guard status == .ok else { throw Self.failure(status, body, what: "fetching the manifest \(repository)@\(reference)") }
        return Manifest(
            digest: headers.first(name: "docker-content-digest") ?? reference, mediaType: headers.first(name: "content-type") ?? "",
            body: body)
    }

    /// The referrers of `digest` (OCI 1.1 `GET /v2/<name>/referrers/<digest>`): an image index,
    /// or `nil` when the registry does not serve the API (distribution 2.8 and 3.x answer 404).
    func referrers(of digest: String, in repository: RepositoryName) async throws -> [UInt8]? {
        let (status, _, body) = try await send(
            .GET, "/v2/\(repository.value)/referrers/\(digest)", scopes: [Self.pull(repository)], accept: ["application/vnd.oci.image.index.v1+json"],
            limit: Self.documentLimit)
        if status == .notFound || status == .badRequest || status == .methodNotAllowed { return nil }
        guard status == .ok else { throw Self.failure(status, body, what: "listing the referrers of \(repository)@\(digest)") }
        return body
    }

    /// A small blob (an image config), following a storage redirect without the token.
    func blob(_ digest: String, in repository: RepositoryName, limit: Int = documentLimit) async throws -> [UInt8] {
        let (status, headers, body) = try await send(.GET, "/v2/\(repository.value)/blobs/\(digest)", scopes: [Self.pull(repository)], limit: limit)
        if [.temporaryRedirect, .found, .seeOther, .movedPermanently, .permanentRedirect].contains(status),
            let location = headers.first(name: "location")
        {
            // Storage back ends (S3, GCS) redirect to a pre-signed URL that must not carry the registry token.
            let target = location.hasPrefix("/") ? baseURL + location : location
            let response: HTTPClientResponse
            let redirected: ByteBuffer
            do {
                response = try await client.execute(HTTPClientRequest(url: target), timeout: timeout)
                redirected = try await response.body.collect(upTo: limit)
            } catch {
                throw RegistryAPIError(.unreachable, "fetching blob \(digest) from its storage redirect failed: \(ConnectionFailure.describe(error))", underlying: error)
            }
            guard response.status == .ok else {
                throw RegistryAPIError(.unexpectedStatus, "the storage redirect for blob \(digest) answered \(response.status.code)", status: Int(response.status.code))
            }
            return Array(redirected.readableBytesView)
        }
        guard status == .ok else { throw Self.failure(status, body, what: "fetching blob \(repository)@\(digest)") }
        return body
    }

    /// Deletes the manifest `digest` (and with it every tag pointing to it).
    /// - Throws: ``RegistryAPIError`` with ``RegistryAPIError/Code/deleteDisabled`` when the
    ///   registry has `storage.delete.enabled: false`.
    func deleteManifest(_ digest: String, in repository: RepositoryName) async throws {
        let (status, _, body) = try await send(
            .DELETE, "/v2/\(repository.value)/manifests/\(digest)", scopes: [Scope(resource: .repository(repository), actions: .delete)], limit: 1 << 20)
        switch status {
        case .accepted, .ok, .noContent:
            return
        case .methodNotAllowed:
            throw RegistryAPIError(
                .deleteDisabled,
                "the registry refuses deletes (405): set storage.delete.enabled: true in its config.yml and restart it", status: 405)
        default:
            throw Self.failure(status, body, what: "deleting \(repository)@\(digest)")
        }
    }

    /// Every repository name in the registry's catalog.
    func catalog() async throws -> [String] {
        var path = "/v2/_catalog?n=1000"
        var names: [String] = []
        for _ in 0..<100_000 {
            let (status, headers, body) = try await send(.GET, path, scopes: [Scope(resource: .catalog, actions: .all)], limit: 64 << 20)
            guard status == .ok else { throw Self.failure(status, body, what: "listing the catalog") }
            guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                throw RegistryAPIError(.malformedResponse, "the registry's catalog is not a JSON object", status: 200)
            }
            names += object["repositories"] as? [String] ?? []
            guard let next = Self.nextLink(headers) else { break }
            path = next
        }
        return names
    }

    // MARK: - Plumbing

    static func pull(_ repository: RepositoryName) -> Scope {
        Scope(resource: .repository(repository), actions: .pull)
    }

    /// The path and query of a `Link: <…>; rel="next"` header.
    static func nextLink(_ headers: HTTPHeaders) -> String? {
        for value in headers["link"] where value.contains("rel=\"next\"") {
            guard let open = value.firstIndex(of: "<"), let close = value.firstIndex(of: ">"), open < close else { continue }
            var target = String(value[value.index(after: open)..<close])
            if let scheme = target.range(of: "://"), let slash = target[scheme.upperBound...].firstIndex(of: "/") {
                target = String(target[slash...])
            }
            return target.hasPrefix("/v2/") ? target : nil
        }
        return nil
    }

    /// The error for a status other than the expected one.
    static func failure(_ status: HTTPResponseStatus, _ body: [UInt8], what: String) -> RegistryAPIError {
        let text = String(decoding: body.prefix(512), as: UTF8.self)
        switch status {
        case .notFound:
            return RegistryAPIError(.notFound, "\(what): not found (\(text))", status: 404)
        default:
            return RegistryAPIError(.unexpectedStatus, "\(what): the registry answered \(status.code) \(text)", status: Int(status.code))
        }
    }

    private func send(
        _ method: HTTPMethod, _ path: String, scopes: [Scope], accept: [String] = [], limit: Int
    ) async throws -> (HTTPResponseStatus, HTTPHeaders, [UInt8]) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(try authorize(scopes))")
        for type in accept { request.headers.add(name: "Accept", value: type) }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await client.execute(request, timeout: timeout)
            body = try await response.body.collect(upTo: max(limit, 64 << 10))
        } catch is NIOTooManyBytesError {
            throw RegistryAPIError(.malformedResponse, "the registry's answer to \(method) \(path) is larger than \(max(limit, 64 << 10)) bytes")
        } catch {
            throw RegistryAPIError(.unreachable, "the registry at \(baseURL) did not answer \(method) \(path): \(ConnectionFailure.describe(error))", underlying: error)
        }
        if response.status == .unauthorized {
            let challenge = response.headers["www-authenticate"].joined(separator: ", ")
            throw RegistryAPIError(
                .tokenRejected,
                "the registry rejected Portcullis's token for \(method) \(path) (its challenge: \(challenge)); run `portcullis doctor`",
                status: 401)
        }
        return (response.status, response.headers, Array(body.readableBytesView))
    }
}
