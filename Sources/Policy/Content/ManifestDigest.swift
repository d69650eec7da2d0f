import Crypto

/// The digest the registry gives a manifest: `sha256:` and the hex SHA-256 of its exact bytes.
public enum ManifestDigest {
    /// The digest of `bytes`.
    public static func sha256(_ bytes: some Sequence<UInt8>) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(bytes))
        return "sha256:" + hasher.finalize().map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
