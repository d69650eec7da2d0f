import Crypto

/// A credential for automation: a high-entropy secret stored only as a hash, with an expiry
/// and labels.
///
/// The secret is 32 random bytes, so a single SHA-256 is enough to store it; a slow hash would
/// only slow down every API call a robot makes.
public struct RobotCredential: Sendable, Equatable, Codable {
    /// The robot's account name.
    public var name: String
    /// `sha256:<hex>` of the secret.
    public var secretHash: String
    /// When the credential stops working; `nil` for never.
    public var expires: Double?
    /// Labels carried into the robot's ``Identity``.
    public var labels: [String: [String]]
    /// When the robot was created (seconds since 1970), if recorded.
    public var created: Double?

    /// Creates a robot credential from stored values.
    public init(name: String, secretHash: String, expires: Double?, labels: [String: [String]] = [:], created: Double? = nil) {
        self.name = name
        self.secretHash = secretHash
        self.expires = expires
        self.labels = labels
        self.created = created
    }

    /// The stored form of a secret.
    public static func hash(secret: String) -> String {
        "sha256:" + SHA256.hash(data: Array(secret.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// Verifies `secret` at time `now` (seconds since 1970).
    /// - Throws: ``PolicyError/Code/credentialExpired`` or ``PolicyError/Code/invalidCredentials``.
    public func verify(secret: String, now: Double) throws {
        guard constantTimeEquals(Array(Self.hash(secret: secret).utf8), Array(secretHash.utf8)) else {
            throw PolicyError(.invalidCredentials, "wrong secret for robot \"\(name)\"")
        }
        if let expires, now >= expires {
            throw PolicyError(.credentialExpired, "robot \"\(name)\" expired")
        }
    }
}
