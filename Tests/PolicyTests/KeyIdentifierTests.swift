import Foundation
import Policy
import Testing
import TestSupport

/// The SubjectPublicKeyInfo prefixes of uncompressed EC points (everything before `04 ‖ X ‖ Y`).
private let spkiPrefix: [String: String] = [
    "P-256": "3059301306072a8648ce3d020106082a8648ce3d030107034200",
    "P-384": "3076301006072a8648ce3d020106052b81040022036200",
]

struct CurveGenerator: Sendable, CustomTestStringConvertible {
    var curve: String
    var gx: String
    var gy: String
    var registry30Constant: String
    var testDescription: String { curve }

    /// The generator point as a public-key PEM.
    func pem() throws -> String {
        let der = try #require(PolicyFixtures.bytes(hex: spkiPrefix[curve]! + "04" + gx + gy))
        return PolicyFixtures.pem(der, label: "PUBLIC KEY")
    }
}

@Suite("Key identifiers")
struct KeyIdentifierTests {
    static let vectors = [PolicyFixtures.keyA, PolicyFixtures.keyB]

    static let generators = [
        CurveGenerator(
            curve: "P-256",
            gx: "6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296",
            gy: "4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5",
            registry30Constant: "xx0BcA-wMohw8atYDJOe6peGModklG2wRHBlXHMvl0M"),
        CurveGenerator(
            curve: "P-384",
            gx: "AA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7",
            gy: "3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F",
            registry30Constant: "-W6Wzot_wuerYbKBVKfGEks3iY2EALna-hBqObnPuJE"),
    ]

    @Test("the measured libtrust, RFC 7638 and registry-3.1 ids of the reference keys come out exactly", arguments: vectors)
    func referenceVectors(_ vector: PolicyFixtures.KeyIDVector) throws {
        let ids = KeyIdentifiers(try PublicKeyMaterial(pem: vector.publicKeyPEM))
        #expect(ids.rfc7638 == vector.rfc7638)
        #expect(ids.registry31 == vector.registry31)
        #expect(try ids.kid(for: .v3_1) == vector.registry31)
        let kid28 = try ids.kid(for: .v2_8)
        #expect(kid28 == ids.libtrust)
        #expect(ids.libtrust == vector.libtrust)
        #expect(kid28 == vector.libtrust)
    }

    @Test("the reference vectors agree with an independent computation in Python", arguments: vectors)
    func referenceVectorsIndependently(_ vector: PolicyFixtures.KeyIDVector) throws {
        let python = try IndependentJOSE.keyIDs(pem: vector.publicKeyPEM)
        #expect(python.libtrust == vector.libtrust)
        #expect(python.rfc7638 == vector.rfc7638)
        #expect(python.joserfc == vector.rfc7638)
        #expect(python.registry31 == vector.registry31)
    }

    @Test("key B's leading zero byte makes the 3.1 id differ from RFC 7638; key A's ids coincide")
    func leadingZeroMatters() {
        #expect(PolicyFixtures.keyB.registry31 != PolicyFixtures.keyB.rfc7638)
        #expect(PolicyFixtures.keyA.registry31 == PolicyFixtures.keyA.rfc7638)
    }

    @Test("for EC keys registry 3.0 is unsupportedKeyForRegistry, naming the curve's constant kid", arguments: vectors)
    func registry30RefusesP256(_ vector: PolicyFixtures.KeyIDVector) throws {
        let ids = KeyIdentifiers(try PublicKeyMaterial(pem: vector.publicKeyPEM))
        expectPolicyError(.unsupportedKeyForRegistry, messageContains: ["xx0BcA-wMohw8atYDJOe6peGModklG2wRHBlXHMvl0M"]) {
            try ids.registry30.get()
        }
        expectPolicyError(.unsupportedKeyForRegistry, messageContains: ["xx0BcA-wMohw8atYDJOe6peGModklG2wRHBlXHMvl0M"]) {
            try ids.kid(for: .v3_0)
        }
    }

    @Test("for a P-384 key registry 3.0 is refused naming the P-384 constant")
    func registry30RefusesP384() throws {
        let ids = try PolicyFixtures.es384Key().signingKey.identifiers
        expectPolicyError(.unsupportedKeyForRegistry, messageContains: ["-W6Wzot_wuerYbKBVKfGEks3iY2EALna-hBqObnPuJE"]) {
            try ids.kid(for: .v3_0)
        }
    }

    @Test("the 3.0 constants are the RFC 7638 thumbprints of the curves' generator points", arguments: generators)
    func registry30ConstantsAreGeneratorThumbprints(_ generator: CurveGenerator) throws {
        // The generator coordinates used here really are 1·G (computed by Python's cryptography).
        let point = try IndependentJOSE.multipleOfGenerator(1, curve: generator.curve)
        #expect(point.x == generator.gx)
        #expect(point.y == generator.gy)

        // Independently of Policy: canonical JWK members, SHA-256 by openssl, base64url.
        let x = PolicyFixtures.base64URL(try #require(PolicyFixtures.bytes(hex: generator.gx)))
        let y = PolicyFixtures.base64URL(try #require(PolicyFixtures.bytes(hex: generator.gy)))
        let members = #"{"crv":"\#(generator.curve)","kty":"EC","x":"\#(x)","y":"\#(y)"}"#
        let digest = try Command("openssl", ["dgst", "-sha256", "-binary"], input: members).run().checked()
        #expect(digest.standardOutputData.count == 32)
        #expect(PolicyFixtures.base64URL(digest.standardOutputData) == generator.registry30Constant)

        // Policy's thumbprint of the generator point, and its published constants, agree.
        let ids = KeyIdentifiers(try PublicKeyMaterial(pem: try generator.pem()))
        #expect(ids.rfc7638 == generator.registry30Constant)
        let constant = generator.curve == "P-256" ? KeyIdentifiers.registry30P256 : KeyIdentifiers.registry30P384
        #expect(constant == generator.registry30Constant)
    }

    @Test("for an RSA key registry 3.0, 3.1 and RFC 7638 ids are one and the same")
    func rsaIDsCoincide() throws {
        let ids = try PolicyFixtures.key(.rs256).signingKey.identifiers
        #expect(try ids.registry30.get() == ids.rfc7638)
        #expect(ids.registry31 == ids.rfc7638)
        #expect(try ids.kid(for: .v3_0) == ids.rfc7638)
        #expect(ids.libtrust != ids.rfc7638)
    }

    @Test(
        "the ids of generated keys agree with Python (own computation and joserfc's thumbprint)",
        arguments: ["es256", "rs256", "es384"])
    func generatedKeysIndependently(_ which: String) throws {
        let key =
            switch which {
            case "es256": try PolicyFixtures.key(.es256)
            case "rs256": try PolicyFixtures.key(.rs256)
            default: try PolicyFixtures.es384Key()
            }
        let ids = key.signingKey.identifiers
        let python = try IndependentJOSE.keyIDs(pem: key.privateKeyPEM)
        #expect(ids.libtrust == python.libtrust)
        #expect(ids.rfc7638 == python.rfc7638)
        #expect(ids.rfc7638 == python.joserfc)
        #expect(ids.registry31 == python.registry31)
        // libtrust shape: 12 groups of 4 base32 characters.
        let groups = ids.libtrust.split(separator: ":")
        #expect(groups.count == 12 && groups.allSatisfy { $0.count == 4 })
        #expect(ids.libtrust.allSatisfy { $0 == ":" || ("A"..."Z").contains($0) || ("2"..."7").contains($0) })
        #expect(ids.rfc7638.count == 43)
    }

    @Test("a key read from its certificate, private key or public key has the same identifiers")
    func sameIDsFromEveryPEM() throws {
        for key in [try PolicyFixtures.key(.es256), try PolicyFixtures.key(.rs256)] {
            let fromPrivate = try PublicKeyMaterial(pem: key.privateKeyPEM)
            let certificatePEM = try #require(key.certificatePEM)
            let fromCertificate = try PublicKeyMaterial(pem: certificatePEM)
            let fromPublic = try PublicKeyMaterial(pem: try key.publicKeyPEM())
            #expect(fromPrivate == fromCertificate)
            #expect(fromPublic == fromCertificate)
            #expect(KeyIdentifiers(fromCertificate) == key.signingKey.identifiers)
            #expect(KeyIdentifiers(fromPublic) == key.signingKey.identifiers)
        }
        #expect(try PublicKeyMaterial(pem: PolicyFixtures.keyA.publicKeyPEM) != PublicKeyMaterial(pem: PolicyFixtures.keyB.publicKeyPEM))
    }

    @Test("subjectPublicKeyInfo is the DER SubjectPublicKeyInfo that openssl writes", arguments: ["es256", "rs256"])
    func subjectPublicKeyInfoIsDER(_ which: String) throws {
        let key = try PolicyFixtures.key(which == "es256" ? .es256 : .rs256)
        let expected = try #require(PolicyFixtures.der(fromPEM: try key.publicKeyPEM()))
        // The reference vectors' PEM bodies are SubjectPublicKeyInfo DER too.
        let vectorDER = try #require(PolicyFixtures.der(fromPEM: PolicyFixtures.keyA.publicKeyPEM))
        let keyA = try PublicKeyMaterial(pem: PolicyFixtures.keyA.publicKeyPEM)
        #expect(key.signingKey.publicKey.subjectPublicKeyInfo == expected)
        #expect(keyA.subjectPublicKeyInfo == vectorDER)
    }

    @Test("unreadable or unsupported key material is refused with invalidKey", arguments: [
        ("garbage", "not PEM at all"),
        ("empty", ""),
        ("Ed25519", PolicyFixtures.ed25519PublicKeyPEM),
        ("P-521", PolicyFixtures.p521PublicKeyPEM),
        ("unknown type", "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n"),
        ("broken DER", "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"),
    ])
    func refusesUnsupportedKeys(_ label: String, _ pem: String) {
        expectPolicyError(.invalidKey) { try PublicKeyMaterial(pem: pem) }
    }

    @Test("the algorithms a key verifies follow its type")
    func algorithmsFollowKeyType() throws {
        #expect(try PolicyFixtures.key(.es256).signingKey.publicKey.algorithms == ["ES256"])
        #expect(try PolicyFixtures.es384Key().signingKey.publicKey.algorithms == ["ES384"])
        #expect(try PolicyFixtures.key(.rs256).signingKey.publicKey.algorithms == ["RS256", "RS384", "RS512"])
        #expect(try PolicyFixtures.key(.es256).jwsAlgorithm == "ES256")
        #expect(try PolicyFixtures.key(.rs256).jwsAlgorithm == "RS256")
    }

    @Test("a certificate that does not belong to the private key is refused with invalidKey")
    func mismatchedCertificateRefused() throws {
        let key = try PolicyFixtures.key(.es256)
        let other = try PolicyFixtures.otherES256Key()
        expectPolicyError(.invalidKey, messageContains: ["leaf"]) {
            try SigningKey(privateKeyPEM: key.privateKeyPEM, certificateChainPEM: other.certificatePEM)
        }
        expectPolicyError(.invalidKey) { try SigningKey(privateKeyPEM: key.privateKeyPEM, certificateChainPEM: "no certificate here") }
        expectPolicyError(.invalidKey) { try SigningKey(privateKeyPEM: "not a key") }
        expectPolicyError(.invalidKey) { try SigningKey(privateKeyPEM: PolicyFixtures.keyA.publicKeyPEM) }
    }
}
