/// Something a token grants access to: a resource type and a name.
///
/// For `repository` resources the name is a repository name (validated by
/// ``RepositoryName``); for `registry` resources it is a registry-wide object such as
/// `catalog`.
public struct Resource: Hashable, Sendable, CustomStringConvertible {
    /// The resource type of repositories.
    public static let repositoryType = "repository"
    /// The resource type of registry-wide objects such as the catalog.
    public static let registryType = "registry"

    /// The resource type, without any `(class)` suffix.
    public var type: String
    /// The resource name.
    public var name: String

    /// Creates a resource without validating it.
    public init(type: String, name: String) {
        self.type = type
        self.name = name
    }

    /// A repository resource.
    public static func repository(_ name: RepositoryName) -> Resource {
        Resource(type: repositoryType, name: name.value)
    }

    /// The registry catalog, guarded by `registry:catalog:*`.
    public static let catalog = Resource(type: registryType, name: "catalog")

    public var description: String { "\(type):\(name)" }
}
