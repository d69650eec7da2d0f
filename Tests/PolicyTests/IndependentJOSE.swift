import Foundation
import Testing
import TestSupport

/// An implementation of the JOSE pieces that shares no code with Policy: Python 3 with the
/// `cryptography` and `joserfc` packages, run through ``Command``. Every call fails the test
/// (by throwing) when Python or a package is missing.
enum IndependentJOSE {
    /// The real interpreter behind `python3` (resolved once, so the pyenv shim runs only once).
    private static let interpreter = Result { () throws -> String in
        let result = try Command("python3", ["-c", "import sys, cryptography, joserfc; print(sys.executable)"]).run().checked()
        return result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs `script` with `request` as JSON on standard input and decodes the JSON it prints.
    /// - Throws: ``CommandError`` when the script fails (its output says why).
    static func run(_ script: String, _ request: [String: Any]) throws -> [String: Any] {
        let input = try JSONSerialization.data(withJSONObject: request)
        let result = try Command(try interpreter.get(), ["-c", prelude + script], standardInput: input).run().checked()
        guard let object = try JSONSerialization.jsonObject(with: result.standardOutputData) as? [String: Any] else {
            throw CommandError.failed(result)
        }
        return object
    }

    /// Like ``run(_:_:)`` but returns the failed result instead of throwing for a non-zero status.
    static func runAllowingFailure(_ script: String, _ request: [String: Any]) throws -> CommandResult {
        let input = try JSONSerialization.data(withJSONObject: request)
        return try Command(try interpreter.get(), ["-c", prelude + script], standardInput: input).run()
    }

    private static let prelude = #"""
        import base64, hashlib, hmac, json, sys
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        def b64u(data):
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        def load_public(pem):
            data = pem.encode()
            if b"CERTIFICATE" in data:
                return x509.load_pem_x509_certificate(data).public_key()
            if b"PRIVATE KEY" in data:
                return serialization.load_pem_private_key(data, password=None).public_key()
            return serialization.load_pem_public_key(data)

        request = json.load(sys.stdin)

        """#

    /// Key ids computed from scratch: libtrust, RFC 7638, the 3.1 variant, and joserfc's own
    /// RFC 7638 thumbprint.
    static func keyIDs(pem: String) throws -> (libtrust: String, rfc7638: String, registry31: String, joserfc: String) {
        let output = try run(
            #"""
            from joserfc.jwk import ECKey, RSAKey
            key = load_public(request["pem"])
            der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
            libtrust = ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))
            def thumbprint(members):
                return b64u(hashlib.sha256(members.encode()).digest())
            if isinstance(key, ec.EllipticCurvePublicKey):
                numbers = key.public_numbers()
                size = (key.curve.key_size + 7) // 8
                crv = {"secp256r1": "P-256", "secp384r1": "P-384"}[key.curve.name]
                def coordinate(value, pad):
                    data = value.to_bytes(size, "big")
                    return b64u(data if pad else (data.lstrip(b"\0") or b"\0"))
                template = '{"crv":"%s","kty":"EC","x":"%s","y":"%s"}'
                rfc = thumbprint(template % (crv, coordinate(numbers.x, True), coordinate(numbers.y, True)))
                r31 = thumbprint(template % (crv, coordinate(numbers.x, False), coordinate(numbers.y, False)))
                jose = ECKey.import_key(key).thumbprint()
            else:
                numbers = key.public_numbers()
                def minimal(value):
                    return value.to_bytes((value.bit_length() + 7) // 8, "big")
                rfc = r31 = thumbprint('{"e":"%s","kty":"RSA","n":"%s"}' % (b64u(minimal(numbers.e)), b64u(minimal(numbers.n))))
                jose = RSAKey.import_key(key).thumbprint()
            print(json.dumps({"libtrust": libtrust, "rfc7638": rfc, "registry31": r31, "joserfc": jose}))
            """#, ["pem": pem])
        func field(_ name: String) throws -> String { try #require(output[name] as? String) }
        return (try field("libtrust"), try field("rfc7638"), try field("registry31"), try field("joserfc"))
    }

    /// The affine coordinates (upper-case hex) of `scalar`·G on `curve` ("P-256" or "P-384").
    static func multipleOfGenerator(_ scalar: Int, curve: String) throws -> (x: String, y: String) {
        let output = try run(
            #"""
            curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}[request["curve"]]
            numbers = ec.derive_private_key(request["scalar"], curve).public_key().public_numbers()
            size = (curve.key_size + 7) // 8
            print(json.dumps({"x": numbers.x.to_bytes(size, "big").hex().upper(), "y": numbers.y.to_bytes(size, "big").hex().upper()}))
            """#, ["curve": curve, "scalar": scalar])
        return (try #require(output["x"] as? String), try #require(output["y"] as? String))
    }

    /// The result of verifying a token with joserfc.
    struct Verified {
        var header: [String: Any]
        var claims: [String: Any]
        /// Python type names of the claims (`int`, `float`, `str`, `list`, …).
        var claimTypes: [String: String]
    }

    /// The joserfc verification script; exits 1 (printing the reason) when the signature fails.
    private static let verifyScript = #"""
        from joserfc import jws
        from joserfc.jws import JWSRegistry
        from joserfc.jwk import ECKey, RSAKey
        key = load_public(request["pem"])
        jwk = ECKey.import_key(key) if isinstance(key, ec.EllipticCurvePublicKey) else RSAKey.import_key(key)
        registry = JWSRegistry(algorithms=[request["alg"]])
        registry.max_header_length = 16384  # an x5c header carries a whole certificate
        try:
            token = jws.deserialize_compact(request["token"], jwk, algorithms=[request["alg"]], registry=registry)
        except Exception as error:
            print(json.dumps({"error": "%s: %s" % (type(error).__name__, error)}))
            sys.exit(1)
        claims = json.loads(token.payload)
        print(json.dumps({"header": token.headers(), "claims": claims,
                          "types": {name: type(value).__name__ for name, value in claims.items()}}))
        """#

    /// Verifies `token`'s signature with joserfc, using only the public key in `pem` (a
    /// certificate, public key or private key PEM), and returns its header and claims.
    static func verify(token: String, pem: String, algorithm: String) throws -> Verified {
        let output = try run(verifyScript, ["token": token, "pem": pem, "alg": algorithm])
        return Verified(
            header: try #require(output["header"] as? [String: Any]),
            claims: try #require(output["claims"] as? [String: Any]),
            claimTypes: try #require(output["types"] as? [String: String])
        )
    }

    /// Whether joserfc refuses `token` (a negative control for ``verify(token:pem:algorithm:)``).
    static func refuses(token: String, pem: String, algorithm: String) throws -> Bool {
        let result = try runAllowingFailure(verifyScript, ["token": token, "pem": pem, "alg": algorithm])
        return result.status == 1 && result.standardOutput.contains("\"error\"")
    }

    /// Signs an arbitrary header and payload text (kept byte for byte, so duplicate members
    /// survive) with `privateKeyPEM`, or with `hmacSecret` for HS256.
    static func sign(header: String, payload: String, algorithm: String, privateKeyPEM: String? = nil, hmacSecret: String? = nil)
        throws -> String
    {
        var request: [String: Any] = ["header": header, "payload": payload, "alg": algorithm]
        request["private_pem"] = privateKeyPEM
        request["secret"] = hmacSecret
        let output = try run(
            #"""
            signing_input = b64u(request["header"].encode()) + "." + b64u(request["payload"].encode())
            alg = request["alg"]
            digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
            if alg.startswith("HS"):
                signature = hmac.new(request["secret"].encode(), signing_input.encode(), {"256": hashlib.sha256}[alg[2:]]).digest()
            else:
                private = serialization.load_pem_private_key(request["private_pem"].encode(), password=None)
                if alg.startswith("ES"):
                    r, s = decode_dss_signature(private.sign(signing_input.encode(), ec.ECDSA(digest)))
                    size = (private.curve.key_size + 7) // 8
                    signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
                else:
                    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), digest)
            print(json.dumps({"token": signing_input + "." + b64u(signature)}))
            """#, request)
        return try #require(output["token"] as? String)
    }
}
