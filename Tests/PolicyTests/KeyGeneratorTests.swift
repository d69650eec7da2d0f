import Foundation
import Policy
import Testing
import TestSupport

@Suite("Key generation")
struct KeyGeneratorTests {
    @Test("generated keys use the promised PEM forms", arguments: KeyGenerator.Algorithm.allCases)
    func pemForms(_ algorithm: KeyGenerator.Algorithm) throws {
        let key = try PolicyFixtures.key(algorithm)
        let label = algorithm == .es256 ? "-----BEGIN PRIVATE KEY-----" : "-----BEGIN RSA PRIVATE KEY-----"
        #expect(key.privateKeyPEM.hasPrefix(label))
        #expect(try #require(key.certificatePEM).hasPrefix("-----BEGIN CERTIFICATE-----"))
        #expect(key.signingKey.certificateChain.count == 1)
        #expect(key.signingKey.x5c.count == 1)
    }

    @Test(
        "the self-signed certificate is a CA for the key that openssl verifies (usable as rootcertbundle)",
        arguments: KeyGenerator.Algorithm.allCases)
    func certificateIsUsableRoot(_ algorithm: KeyGenerator.Algorithm) throws {
        let key = try PolicyFixtures.key(algorithm)
        let certificatePEM = try #require(key.certificatePEM)
        let text = try Command("openssl", ["x509", "-noout", "-text"], input: certificatePEM).run().checked().standardOutput
        #expect(text.contains("CA:TRUE"), "\(text)")
        #expect(text.contains("Digital Signature") && text.contains("Certificate Sign"), "\(text)")
        #expect(text.contains("CN=portcullis test signer") || text.contains("CN = portcullis test signer"), "\(text)")
        #expect(text.contains(algorithm == .es256 ? "ecdsa-with-SHA256" : "sha256WithRSAEncryption"), "\(text)")

        // The certificate's signature verifies against itself, and it carries the private key's public half.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("cert.pem").path
        try Data(certificatePEM.utf8).write(to: URL(fileURLWithPath: file))
        let verified = try Command("openssl", ["verify", "-no_check_time", "-CAfile", file, file]).run()
        #expect(verified.succeeded, "\(verified)")
        #expect(try PolicyFixtures.publicKeyPEM(of: certificatePEM) == key.publicKeyPEM())
    }

    @Test("the certificate is valid from an hour before `now` for the requested number of days")
    func validityWindow() throws {
        let output = try KeyGenerator.generate(.es256, commonName: "window", now: PolicyFixtures.now, validityDays: 2)
        let dates = try Command("openssl", ["x509", "-noout", "-startdate", "-enddate", "-dateopt", "iso_8601"], input: output.certificatePEM)
            .run().checked().standardOutput
        // 1_750_000_000.25 is 2025-06-15T15:06:40Z; minus an hour, and plus two days.
        #expect(dates.contains("notBefore=2025-06-15 14:06:40Z"), "\(dates)")
        #expect(dates.contains("notAfter=2025-06-17 15:06:40Z"), "\(dates)")
    }
}
