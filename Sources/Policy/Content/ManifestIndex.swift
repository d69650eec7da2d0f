import Foundation

/// An image index (OCI) or manifest list (Docker): the manifests it lists.
public enum ManifestIndex {
    /// The digests of `manifests[]` in `bytes`; empty when it is no index (or not JSON).
    public static func children(of bytes: [UInt8]) -> [String] {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any],
            let manifests = object["manifests"] as? [[String: Any]]
        else { return [] }
        return manifests.compactMap { $0["digest"] as? String }
    }
}
