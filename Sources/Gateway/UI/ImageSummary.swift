import Foundation
import Policy

/// What the registry browser shows of one manifest: its kind (image, index, artifact), the
/// platforms of an index, the total size of what a pull fetches, and its time as prune judges it
/// (``ImageTime``: the config's `created`, else the push time Portcullis recorded).
struct ImageSummary: Sendable {
    var kind: String
    var platforms: [String]
    /// Bytes: the manifest's config and layers; for an index, those of the images it lists.
    var size: Int?
    /// `created …`, `pushed …` or `time unknown`.
    var time: String

    static let imageConfigTypes: Set<String> = [
        "application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json",
    ]

    /// Reads `digest` of `repository` (and, for an index, the manifests it lists).
    static func of(_ digest: String, in repository: RepositoryName, api: RegistryAPI, pushTime: Double?) async -> ImageSummary {
        let created = (try? await ImageInspector(api: api).facts(of: digest, in: repository).created) ?? nil
        let when = ImageTime.describe(ImageTime(created: created, pushed: pushTime))
        guard let manifest = try? await api.manifest(digest, in: repository),
            let object = (try? JSONSerialization.jsonObject(with: Data(manifest.body))) as? [String: Any]
        else { return ImageSummary(kind: "unreadable", platforms: [], size: nil, time: when) }
        if let entries = object["manifests"] as? [[String: Any]] {
            var total = 0
            var complete = true
            for entry in entries {
                guard let child = entry["digest"] as? String,
                    let childManifest = try? await api.manifest(child, in: repository),
                    let childObject = (try? JSONSerialization.jsonObject(with: Data(childManifest.body))) as? [String: Any],
                    let size = imageSize(childObject)
                else {
                    complete = false
                    continue
                }
                total += size
            }
            return ImageSummary(kind: "index", platforms: platforms(of: object), size: complete ? total : nil, time: when)
        }
        return ImageSummary(kind: kind(of: object), platforms: [], size: imageSize(object), time: when)
    }

    /// `index`, `image`, or `artifact (<its type>)`: an `artifactType`, or a config that is not an
    /// image config, makes an artifact.
    static func kind(of object: [String: Any]) -> String {
        if object["manifests"] != nil { return "index" }
        if let artifactType = object["artifactType"] as? String { return "artifact (\(artifactType))" }
        if let configType = (object["config"] as? [String: Any])?["mediaType"] as? String, !imageConfigTypes.contains(configType) {
            return "artifact (\(configType))"
        }
        return "image"
    }

    /// The platforms an index lists, as `os/architecture[/variant]`.
    static func platforms(of object: [String: Any]) -> [String] {
        (object["manifests"] as? [[String: Any]] ?? []).compactMap { entry in
            guard let platform = entry["platform"] as? [String: Any], let os = platform["os"] as? String,
                let architecture = platform["architecture"] as? String
            else { return nil }
            return [os, architecture, platform["variant"] as? String].compactMap { $0 }.joined(separator: "/")
        }
    }

    /// The config's and layers' sizes of an image manifest.
    static func imageSize(_ object: [String: Any]) -> Int? {
        guard let config = object["config"] as? [String: Any], let configSize = config["size"] as? Int else { return nil }
        let layers = (object["layers"] as? [[String: Any]] ?? []).compactMap { $0["size"] as? Int }
        return configSize + layers.reduce(0, +)
    }

    /// `12.3 MB`-style sizes (decimal units, as registries and docker print them).
    static func format(_ bytes: Int?) -> String {
        guard let bytes else { return "unknown" }
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}
