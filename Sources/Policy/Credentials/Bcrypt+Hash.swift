import CCrypt

#if canImport(Glibc)
import Glibc
#endif

extension Bcrypt {
    /// Hashes `password` with bcrypt (`$2y$`, as `htpasswd -B` writes) at `cost`, using the
    /// 16 given random bytes as salt.
    /// - Throws: ``PolicyError/Code/unsupportedHashKind`` when the C library cannot produce bcrypt.
    public static func hash(password: String, cost: Int = 10, salt: [UInt8]) throws -> String {
        precondition(salt.count >= 16, "bcrypt needs 16 bytes of salt")
        var setting = [CChar](repeating: 0, count: 64)
        let generated = salt.withUnsafeBufferPointer { saltBytes in
            crypt_gensalt_rn("$2y$", UInt(cost), saltBytes.baseAddress, Int32(saltBytes.count), &setting, Int32(setting.count))
        }
        guard generated != nil else {
            throw PolicyError(.unsupportedHashKind, "the C library cannot generate a bcrypt salt")
        }
        let settingString = String(cString: setting)
        guard let hash = crypt(password: password, setting: settingString) else {
            throw PolicyError(.unsupportedHashKind, "the C library cannot compute bcrypt")
        }
        return hash
    }
}
