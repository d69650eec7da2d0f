import CCrypt
#if canImport(Glibc)
import Glibc
#endif

/// bcrypt verification through the C library's `crypt_r` (libxcrypt on Linux).
///
/// Only `$2y$`, `$2b$` and `$2a$` hashes are accepted: they are what `htpasswd -B` writes and
/// what the registry's own htpasswd backend accepts.
public enum Bcrypt {
    /// The hash prefixes accepted as bcrypt.
    public static let prefixes = ["$2y$", "$2b$", "$2a$"]

    /// Whether `hash` is a bcrypt hash.
    public static func isBcrypt(_ hash: String) -> Bool {
        prefixes.contains(where: hash.hasPrefix)
    }

    /// Checks `password` against a bcrypt `hash`, in constant time over the hash output.
    /// - Throws: ``PolicyError/Code/unsupportedHashKind`` if `hash` is not bcrypt.
    public static func verify(password: String, hash: String) throws -> Bool {
        guard isBcrypt(hash) else {
            throw PolicyError(.unsupportedHashKind, "not a bcrypt hash")
        }
        // crypt_r reads a C string: a NUL would silently cut the password short.
        guard !password.utf8.contains(0) else { return false }
        guard let computed = crypt(password: password, setting: hash) else { return false }
        return constantTimeEquals(Array(computed.utf8), Array(hash.utf8))
    }

    /// Runs `crypt_r`; `nil` when the C library refuses the setting.
    static func crypt(password: String, setting: String) -> String? {
        #if canImport(Glibc)
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        memset(data, 0, MemoryLayout<crypt_data>.size)
        guard let result = crypt_r(password, setting, data) else { return nil }
        let string = String(cString: result)
        // libxcrypt returns a string starting with "*" on failure.
        return string.hasPrefix("*") ? nil : string
        #else
        return nil
        #endif
    }
}

/// Compares two byte strings without an early exit on the first difference.
func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}
