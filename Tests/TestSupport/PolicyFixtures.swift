import Foundation
import Policy

/// Shared inputs for tests of the `Policy` module: a fixed clock, token-signing keys generated
/// once per test process, the key-id test vectors measured against real registries, and
/// htpasswd lines made by the real `htpasswd` tool.
///
/// Keys are generated lazily and at most once per process (an RSA key takes a noticeable
/// fraction of a second), so use these instead of calling ``KeyGenerator`` in every test.
public enum PolicyFixtures {
    /// The time every test pretends it is: 2025-06-15T15:06:40Z, with a fractional part so that
    /// truncation to whole seconds is exercised.
    public static let now = Date(timeIntervalSince1970: 1_750_000_000.25)
    /// `now` in whole seconds, as tokens carry it.
    public static let nowSeconds: Int = 1_750_000_000
    /// The issuer the test tokens carry.
    public static let issuer = "portcullis-test-issuer"
    /// The audience (registry service name) the test tokens carry.
    public static let audience = "registry.test"

    // MARK: Generated keys

    /// A generated signing key with its PEM forms.
    public struct GeneratedKey: Sendable, CustomStringConvertible {
        /// What ``KeyGenerator`` was asked for (`nil` for keys loaded from a fixed PEM).
        public var algorithm: KeyGenerator.Algorithm?
        /// The private key (PKCS#8 for EC, PKCS#1 for RSA).
        public var privateKeyPEM: String
        /// A self-signed certificate for the key (`nil` when none exists).
        public var certificatePEM: String?
        /// The key loaded with its certificate chain, ready for ``TokenMinter``.
        public var signingKey: SigningKey

        /// The JWS algorithm the key signs with (`ES256`, `ES384`, `RS256`).
        public var jwsAlgorithm: String { signingKey.algorithm }

        /// The same key loaded without a certificate.
        public func signingKeyWithoutCertificate() throws -> SigningKey {
            try SigningKey(privateKeyPEM: privateKeyPEM)
        }

        /// The public key as a `PUBLIC KEY` PEM, computed by `openssl`.
        public func publicKeyPEM() throws -> String {
            try PolicyFixtures.publicKeyPEM(of: privateKeyPEM)
        }

        public var description: String { jwsAlgorithm }
    }

    private static let generatedES256 = Result { try generate(.es256) }
    private static let generatedRS256 = Result { try generate(.rs256) }
    private static let generatedSecondES256 = Result { try generate(.es256, commonName: "another signer") }
    private static let loadedES384 = Result {
        GeneratedKey(
            algorithm: nil, privateKeyPEM: p384PrivateKeyPEM, certificatePEM: nil,
            signingKey: try SigningKey(privateKeyPEM: p384PrivateKeyPEM))
    }

    /// The shared generated key for `algorithm`, with a self-signed certificate.
    public static func key(_ algorithm: KeyGenerator.Algorithm) throws -> GeneratedKey {
        switch algorithm {
        case .es256: try generatedES256.get()
        case .rs256: try generatedRS256.get()
        }
    }

    /// A second, unrelated P-256 key, for "signed by somebody else" tests.
    public static func otherES256Key() throws -> GeneratedKey { try generatedSecondES256.get() }

    /// A fixed P-384 key (ES384), without certificate: ``KeyGenerator`` does not make P-384 keys.
    public static func es384Key() throws -> GeneratedKey { try loadedES384.get() }

    /// Generates a fresh key; prefer ``key(_:)`` unless the test needs a key of its own.
    public static func generate(_ algorithm: KeyGenerator.Algorithm, commonName: String = "portcullis test signer") throws
        -> GeneratedKey
    {
        let output = try KeyGenerator.generate(algorithm, commonName: commonName, now: now)
        return GeneratedKey(
            algorithm: algorithm,
            privateKeyPEM: output.privateKeyPEM,
            certificatePEM: output.certificatePEM,
            signingKey: try SigningKey(privateKeyPEM: output.privateKeyPEM, certificateChainPEM: output.certificatePEM)
        )
    }

    /// A throwaway P-384 private key (PKCS#8), made with `openssl ecparam -name secp384r1`.
    public static let p384PrivateKeyPEM = """
        -----BEGIN PRIVATE KEY-----
        MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBg6o2EGfLRDOrt7tfj
        ZbhndzC+6XSKT5rCi/Y0UkZOKm7nl2lOr2hWsBN2rWkXsjKhZANiAASxTLoOJEIr
        R60HSHwI+V2NGXH1tot9Kp7XyUaEggtqQS/yxhvZPvWE3Y57OVBbKj9V853C+YIG
        wjAP9SDbBVG5HQaaOAzxarigLWqGB2mQyYUDSSQ+Qtjnb2iQIFixg/0=
        -----END PRIVATE KEY-----

        """

    /// An Ed25519 public key, a kind the registries' `rootcertbundle` cannot use everywhere.
    public static let ed25519PublicKeyPEM = """
        -----BEGIN PUBLIC KEY-----
        MCowBQYDK2VwAyEAREf+A+ACdBxYT9OEyYqmezUphdwQrH027ysfQJZO0Hk=
        -----END PUBLIC KEY-----

        """

    /// A P-521 public key, which the registries do not accept for tokens.
    public static let p521PublicKeyPEM = """
        -----BEGIN PUBLIC KEY-----
        MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQBBefLET8n2DTW0RJ8+ql5dzer8NE1
        yYheSgNHC9enLeX4ZHUz8YTKthLeR7M5qg2kJWmcNT9q9nxUmOIVrPdE4j8BGG0E
        A0uZZQoQ153AAiZLBfjmrArt0Zi0MrRItXiu3HtXfbE6k/PP21aoAmkXJki2Kq9S
        kGRP3r1LN6NpQh84w7E=
        -----END PUBLIC KEY-----

        """

    // MARK: Key-id vectors

    /// A public key with the key ids the real registries computed for it
    /// (`/work/shared/reference/registry-token-compat.md`).
    public struct KeyIDVector: Sendable, CustomStringConvertible {
        /// A short name for test output.
        public var name: String
        /// The SubjectPublicKeyInfo PEM.
        public var publicKeyPEM: String
        /// What distribution 2.8 computes.
        public var libtrust: String
        /// The RFC 7638 thumbprint.
        public var rfc7638: String
        /// What distribution 3.1 computes.
        public var registry31: String

        public var description: String { name }
    }

    /// P-256 key A: both coordinates start with a non-zero byte, so 3.1 agrees with RFC 7638.
    public static let keyA = KeyIDVector(
        name: "key A",
        publicKeyPEM: """
            -----BEGIN PUBLIC KEY-----
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEvHYhlAsBxsflU0vWpnThACFbWwOD
            zkdekGT3C9Od0UlkrEbhOJaAdQ0rLAgFrciTqSyrySJlInnmJkLZfCy3kA==
            -----END PUBLIC KEY-----

            """,
        libtrust: "76YZ:WMPG:5GWO:3MZQ:TYLS:JB7X:BHVF:YMDE:BBLS:2EHS:BRQ4:HW7N",
        rfc7638: "coWmBz-pQUo6grr-BnBIR_sDB-Gy33xHeXi1EaJZtA8",
        registry31: "coWmBz-pQUo6grr-BnBIR_sDB-Gy33xHeXi1EaJZtA8"
    )

    /// P-256 key B: its y coordinate starts with 0x00, so 3.1 differs from RFC 7638.
    public static let keyB = KeyIDVector(
        name: "key B",
        publicKeyPEM: """
            -----BEGIN PUBLIC KEY-----
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtCPRHPYP0cra5vyNtM+5U8PyVws8
            VYEe/7EMBn2TBBAAJf1cMHbwzrmvn1Ttbh4JTDM+SNb6wsRh4O4gz27n7w==
            -----END PUBLIC KEY-----

            """,
        libtrust: "BM36:Y7K7:S2XB:R572:ARVS:YDFS:2DNZ:5CDA:Q5FB:Y3LW:JG6K:XV6I",
        rfc7638: "MqU9qh82xKLr94NtaCch1Ixp_psDKup8IFNdRnLnegI",
        registry31: "YR-MZbn2nZqZn450jAq_ea9cjqq-xRJFv2YAsVzB8-4"
    )

    // MARK: htpasswd

    /// How `htpasswd` hashes a password.
    public enum HtpasswdHash: String, Sendable, CaseIterable {
        /// bcrypt (`-B`), the only kind Portcullis accepts.
        case bcrypt = "-B"
        /// `{SHA}` (`-s`).
        case sha1 = "-s"
        /// Apache MD5, `$apr1$` (`-m`).
        case apacheMD5 = "-m"
        /// Traditional DES crypt (`-d`, passwords up to 8 characters).
        case crypt = "-d"
    }

    /// One `user:hash` line written by the real `htpasswd -nb` (Debian package apache2-utils).
    /// - Throws: ``CommandError`` when `htpasswd` is missing or fails: tests that need it must
    ///   fail, not skip.
    public static func htpasswdLine(user: String, password: String, hash: HtpasswdHash = .bcrypt) throws -> String {
        let result = try Command("htpasswd", ["-nb" + hash.rawValue.dropFirst(), user, password]).run().checked()
        guard let line = result.standardOutput.split(separator: "\n").first, line.hasPrefix(user + ":") else {
            throw CommandError.failed(result)
        }
        return String(line)
    }

    // MARK: PEM

    /// Wraps DER bytes in a PEM block with 64-character lines.
    public static func pem(_ der: [UInt8], label: String) -> String {
        let base64 = Data(der).base64EncodedString()
        var lines: [Substring] = []
        var rest = Substring(base64)
        while !rest.isEmpty {
            lines.append(rest.prefix(64))
            rest = rest.dropFirst(64)
        }
        return "-----BEGIN \(label)-----\n" + lines.joined(separator: "\n") + "\n-----END \(label)-----\n"
    }

    /// The DER bytes of the first PEM block of `pem`.
    public static func der(fromPEM pem: String) -> [UInt8]? {
        let body = pem.split(separator: "\n")
            .drop(while: { !$0.hasPrefix("-----BEGIN") }).dropFirst()
            .prefix(while: { !$0.hasPrefix("-----END") })
            .joined()
        return Data(base64Encoded: body).map(Array.init)
    }

    /// The SubjectPublicKeyInfo PEM of a private key (or of a certificate's key), computed by
    /// `openssl`, independently of `Policy`.
    /// - Throws: ``CommandError`` when `openssl` is missing or cannot read the input.
    public static func publicKeyPEM(of pem: String) throws -> String {
        let arguments = pem.contains("BEGIN CERTIFICATE") ? ["x509", "-pubkey", "-noout"] : ["pkey", "-pubout"]
        return try Command("openssl", arguments, input: pem).run().checked().standardOutput
    }

    // MARK: Encodings

    /// Bytes from a hexadecimal string (white space ignored); `nil` for anything else.
    public static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8.filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\n") })
        guard digits.count % 2 == 0 else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else { return nil }
            result.append(byte)
        }
        return result
    }

    /// base64url without padding (RFC 7515 §2).
    public static func base64URL(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes base64url with or without padding.
    public static func bytes(base64URL text: some StringProtocol) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64.append("=") }
        return Data(base64Encoded: base64).map(Array.init)
    }
}
