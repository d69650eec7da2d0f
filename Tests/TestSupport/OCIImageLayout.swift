import Foundation

/// Writes OCI image layouts (`oci:DIR:TAG`) for skopeo to push, with real tar layers made by
/// the system's `tar`.
public enum OCIImageLayout {
    /// What was written.
    public struct Image: Sendable {
        /// `sha256:…` of the manifest.
        public var manifestDigest: String
        /// `sha256:…` of the config blob.
        public var configDigest: String
        /// `sha256:…` of each layer, in order.
        public var layerDigests: [String]
    }

    /// Writes an image whose layers each hold the given files, tagged `tag`, into `directory`.
    /// - Parameters:
    ///   - layers: per layer, file name → contents.
    ///   - created: the config's `created` time (RFC 3339), if any.
    public static func write(
        to directory: String, tag: String, layers: [[String: Data]], created: String? = nil, label: String = "test"
    ) throws -> Image {
        let fileManager = FileManager.default
        let blobs = directory + "/blobs/sha256"
        try fileManager.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        func store(_ data: Data) throws -> (String, Int) {
            let hex = try sha256Hex(data)
            try data.write(to: URL(fileURLWithPath: "\(blobs)/\(hex)"))
            return ("sha256:\(hex)", data.count)
        }
        var layerEntries: [(String, Int)] = []
        for (index, files) in layers.enumerated() {
            let source = fileManager.temporaryDirectory.appendingPathComponent("layer-\(UUID().uuidString)").path
            try fileManager.createDirectory(atPath: source, withIntermediateDirectories: true)
            defer { try? fileManager.removeItem(atPath: source) }
            for (name, contents) in files {
                try contents.write(to: URL(fileURLWithPath: "\(source)/\(name)"))
            }
            let tarball = source + ".tar"
            defer { try? fileManager.removeItem(atPath: tarball) }
            _ = try Command(
                "tar", ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-cf", tarball, "-C", source, "."]
            ).run().checked()
            layerEntries.append(try store(try Data(contentsOf: URL(fileURLWithPath: tarball))))
            _ = index
        }
        let diffIDs = layerEntries.map { "\"\($0.0)\"" }.joined(separator: ",")
        let createdMember = created.map { "\"created\":\"\($0)\"," } ?? ""
        let config = try store(
            Data(
                #"{\#(createdMember)"architecture":"amd64","os":"linux","config":{"Labels":{"test":"\#(label)"}},"rootfs":{"type":"layers","diff_ids":[\#(diffIDs)]}}"#
                    .utf8))
        let layerList = layerEntries.map {
            #"{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#($0.0)","size":\#($0.1)}"#
        }.joined(separator: ",")
        let manifest = try store(
            Data(
                #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(config.0)","size":\#(config.1)},"layers":[\#(layerList)]}"#
                    .utf8))
        let index =
            #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(manifest.0)","size":\#(manifest.1),"annotations":{"org.opencontainers.image.ref.name":"\#(tag)"}}]}"#
        try Data(index.utf8).write(to: URL(fileURLWithPath: directory + "/index.json"))
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: directory + "/oci-layout"))
        return Image(manifestDigest: manifest.0, configDigest: config.0, layerDigests: layerEntries.map(\.0))
    }

    /// Hex SHA-256 of `data`, by the system's `sha256sum`.
    public static func sha256Hex(_ data: Data) throws -> String {
        let result = try Command("sha256sum", standardInput: data).run().checked()
        return String(result.standardOutput.prefix(64))
    }
}
