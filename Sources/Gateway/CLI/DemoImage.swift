import Crypto
import Foundation

/// A minimal OCI image layout (`oci:DIR:v1`) for the demo: one empty layer and a config.
enum DemoImage {
    /// Writes the layout into `directory`, tagged `v1`.
    static func write(to directory: String) throws {
        let blobs = (directory as NSString).appendingPathComponent("blobs/sha256")
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        func store(_ bytes: [UInt8]) throws -> (digest: String, size: Int) {
            let hex = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            try Data(bytes).write(to: URL(fileURLWithPath: (blobs as NSString).appendingPathComponent(hex)))
            return ("sha256:\(hex)", bytes.count)
        }
        let layer = try store([UInt8](repeating: 0, count: 1024))
        let config = try store(
            Array(
                #"{"architecture":"amd64","os":"linux","config":{"Labels":{"org.opencontainers.image.title":"portcullis demo"}},"rootfs":{"type":"layers","diff_ids":["\#(layer.digest)"]}}"#
                    .utf8))
        let manifest = try store(
            Array(
                #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(config.digest)","size":\#(config.size)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(layer.digest)","size":\#(layer.size)}]}"#
                    .utf8))
        let index =
            #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(manifest.digest)","size":\#(manifest.size),"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}"#
        try Data(index.utf8).write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("index.json")))
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(
            to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("oci-layout")))
    }
}
