import Foundation
import Policy

/// Reads when an image was created, for `portcullis prune`.
///
/// The time comes from the image config's `created` (for an OCI or Docker v2 manifest), else
/// from the manifest's `org.opencontainers.image.created` annotation; for an index or manifest
/// list it is the index's own annotation, else the newest `created` of the images it lists;
/// for a schema 1 manifest it is the newest `created` of its history. Registry 2.8 records no
/// push time that its API exposes (no `Last-Modified` on manifests): when none of these is
/// present the time is unknown here, and the prune falls back to the push time Portcullis
/// recorded (``PushRecord``), if any.
struct ImageInspector: Sendable {
    /// What a manifest says about its image.
    struct Facts: Sendable {
        /// Seconds since 1970, `nil` when unknown.
        var created: Double?
        /// Digests of the manifests an index references.
        var references: [String]
    }

    let api: RegistryAPI

    /// The facts of the manifest `digest` in `repository`.
    /// - Throws: ``RegistryAPIError`` when the manifest cannot be read.
    func facts(of digest: String, in repository: RepositoryName) async throws -> Facts {
        let manifest = try await api.manifest(digest, in: repository)
        guard let object = try? JSONSerialization.jsonObject(with: Data(manifest.body)) as? [String: Any] else {
            throw RegistryAPIError(.malformedResponse, "the manifest \(repository)@\(digest) is not a JSON object")
        }
        let annotated = Self.annotatedCreation(object)
        if let entries = object["manifests"] as? [[String: Any]] {
            let references = entries.compactMap { $0["digest"] as? String }
            if let annotated { return Facts(created: annotated, references: references) }
            var newest: Double?
            for child in references {
                // A child that cannot be read (not pushed, or not an image) just has no time.
                guard let created = try? await imageFacts(of: child, in: repository) else { continue }
                newest = max(newest ?? created, created)
            }
            return Facts(created: newest, references: references)
        }
        return Facts(created: try await creation(ofImage: object, in: repository) ?? annotated, references: [])
    }

    /// The creation time of an image manifest (not an index).
    private func imageFacts(of digest: String, in repository: RepositoryName) async throws -> Double? {
        let manifest = try await api.manifest(digest, in: repository)
        guard let object = try? JSONSerialization.jsonObject(with: Data(manifest.body)) as? [String: Any], object["manifests"] == nil else {
            return nil
        }
        return try await creation(ofImage: object, in: repository) ?? Self.annotatedCreation(object)
    }

    /// `created` of the config an image manifest names, or of a schema 1 manifest's history.
    private func creation(ofImage object: [String: Any], in repository: RepositoryName) async throws -> Double? {
        if let config = object["config"] as? [String: Any], let configDigest = config["digest"] as? String {
            let bytes: [UInt8]
            do {
                bytes = try await api.blob(configDigest, in: repository)
            } catch let error as RegistryAPIError where error.code == .notFound {
                return nil  // a config the registry lost: unknown, so the image is kept
            }
            guard let document = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return nil }
            return (document["created"] as? String).flatMap(RFC3339Timestamp.parse)
        }
        if let history = object["history"] as? [[String: Any]] {
            return history.compactMap { entry -> Double? in
                guard let text = entry["v1Compatibility"] as? String,
                    let document = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                else { return nil }
                return (document["created"] as? String).flatMap(RFC3339Timestamp.parse)
            }.max()
        }
        return nil
    }

    /// The `org.opencontainers.image.created` annotation of a manifest or index.
    static func annotatedCreation(_ object: [String: Any]) -> Double? {
        ((object["annotations"] as? [String: Any])?["org.opencontainers.image.created"] as? String).flatMap(RFC3339Timestamp.parse)
    }
}
