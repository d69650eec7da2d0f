import Foundation
import TestSupport

/// The registry and Portcullis most integration tests share: started once, on first use.
enum SharedDeployment {
    static let users = ["alice": "alice-secret", "admin": "admin-secret", "reader": "reader-secret", "bob": "bob-secret"]

    /// The rules of the example, plus a pull-only `reader` on `alice/**`.
    static let rules = """
          - {account: admin, name: "**", actions: ["*"]}
          - {account: admin, type: registry, name: catalog, actions: ["*"]}
          - {account: bob, type: registry, name: catalog, actions: []}
          - {account: reader, name: "alice/**", actions: [pull]}
          - {account: "*", name: "${account}/**", actions: [pull, push, delete]}
          - {account: anonymous, name: "public/**", actions: [pull]}
        """

    private static let started = Task { try await Deployment.start(users: users, rules: rules) }

    /// The running deployment.
    static func get() async throws -> Deployment {
        try await started.value
    }
}

/// A small image in an OCI layout, written once per test that needs one.
func writeImage(named name: String, tag: String = "v1", content: String) throws -> (path: String, image: OCIImageLayout.Image) {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("oci-\(name)-\(UUID().uuidString.prefix(8))").path
    let image = try OCIImageLayout.write(
        to: path, tag: tag,
        layers: [["hello.txt": Data("hello from \(content)\n".utf8)], ["data.bin": Data((0..<4096).map { UInt8(($0 * 7) & 0xFF) })]],
        label: content)
    return (path, image)
}
