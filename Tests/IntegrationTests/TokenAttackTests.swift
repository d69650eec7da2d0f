import Foundation
import Policy
import Testing
import TestSupport

// Hostile Bearer tokens at the proxy. The tokens are crafted byte by byte by an independent
// implementation (Python's `cryptography`, never Policy's minter), so header and payload can
// carry anything: duplicate members, foreign keys, HMAC over public keys, broken encodings.

/// One hostile token and what Portcullis must say about it.
struct TokenAttack: Sendable, CustomStringConvertible {
    /// The name of the token in the factory's output, also the repository it is aimed at.
    var name: String
    /// A substring the warning log line must carry: the reason.
    var reason: String
    /// The `error` of the challenge.
    var error = "invalid_token"
    /// The method and path the token is sent to.
    var method = "GET"
    var path: String?
    /// Owner of the repository in the default path.
    var owner = "alice"

    var target: String { path ?? "/v2/\(owner)/\(name)/tags/list" }
    var description: String { name }
}

/// Keys, an external issuer, and a Portcullis that trusts both (started once), with hostile tokens
/// made fresh for each test: the leeway cases are relative to the time they are sent.
struct TokenAttackFixture: Sendable {
    static let idpIssuer = "https://idp.attack.test"
    static let idpAudience = "portcullis-clients"

    let deployment: Deployment
    let tokens: [String: String]
    let directory: String

    /// The deployment and the key files the token factory signs with.
    private struct Keys: Sendable {
        var deployment: Deployment
        var directory: String
        var files: [String: String]
    }

    private static let keys = Task { () throws -> Keys in
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("attacks-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // An external issuer configured by a bare RSA public key: the textbook target of HS256 confusion.
        let idp = try KeyGenerator.generate(.rs256, commonName: "idp", now: Date())
        try Data(idp.privateKeyPEM.utf8).write(to: URL(fileURLWithPath: directory + "/idp.key"))
        try Data(PolicyFixtures.publicKeyPEM(of: idp.privateKeyPEM).utf8).write(to: URL(fileURLWithPath: directory + "/idp.pub"))
        let deployment = try await Deployment.start(
            users: ["alice": "alice-secret"],
            rules: #"  - {account: "*", name: "${account}/**", actions: [pull, push, delete]}"#,
            extraConfiguration: """
                issuers:
                  - issuer: \(idpIssuer)
                    audiences: [\(idpAudience)]
                    public_keys: [\(directory)/idp.pub]
                """)
        let files = [
            "portcullis_key": deployment.directory + "/keys/token.key", "portcullis_cert": deployment.directory + "/keys/token.crt",
            "other_key": deployment.directory + "/otherkeys/token.key", "other_cert": deployment.directory + "/otherkeys/token.crt",
            "idp_key": directory + "/idp.key", "idp_pub": directory + "/idp.pub", "idp_issuer": idpIssuer,
            "idp_audience": idpAudience,
        ]
        return Keys(deployment: deployment, directory: directory, files: files)
    }

    /// The shared deployment with tokens made now.
    static func fresh() async throws -> TokenAttackFixture {
        let keys = try await keys.value
        var configuration: [String: Any] = keys.files
        configuration["now"] = Int(Date().timeIntervalSince1970)
        let result = try await Command(
            "python3", ["-c", TokenFactory.script], standardInput: try JSONSerialization.data(withJSONObject: configuration)
        ).runInBackground().checked()
        guard let tokens = try JSONSerialization.jsonObject(with: result.standardOutputData) as? [String: String] else {
            throw HarnessError("the token factory printed no JSON object: \(result)")
        }
        return TokenAttackFixture(deployment: keys.deployment, tokens: tokens, directory: keys.directory)
    }

    func token(_ name: String) throws -> String {
        guard let token = tokens[name] else { throw HarnessError("the token factory made no token \(name)") }
        return token
    }

    /// The warning lines Portcullis logged for `target` (logfmt, JSON or plain text lines).
    func warnings(for target: String) -> [Substring] {
        let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
        return deployment.gateway.log.split(separator: "\n").filter { line in
            Self.isWarning(line) && (line.contains("path=\(path) ") || line.hasSuffix("path=\(path)") || line.contains("\"path\":\"\(path)\""))
        }
    }

    /// Whether a log line is at warning level, whatever the log format.
    static func isWarning(_ line: Substring) -> Bool {
        line.contains("level=warning") || line.contains("\"level\":\"warning\"") || line.contains(" warning ")
    }
}

@Suite("JWT attacks at the proxy: every hostile token is refused with a challenge and a logged reason", .serialized)
struct TokenAttackTests {
    static let attacks: [TokenAttack] = [
        // alg none, in every spelling.
        TokenAttack(name: "alg-none", reason: "alg none is never accepted"),
        TokenAttack(name: "alg-none-with-x5c", reason: "alg none is never accepted"),
        TokenAttack(name: "alg-none-capitalised", reason: "alg None does not fit"),
        TokenAttack(name: "alg-missing", reason: "header has no alg"),
        // HMAC keyed with Portcullis's own public material.
        TokenAttack(name: "hs256-public-key-pem", reason: "alg HS256 is never accepted"),
        TokenAttack(name: "hs256-public-key-der", reason: "alg HS256 is never accepted"),
        TokenAttack(name: "hs256-certificate-pem", reason: "alg HS256 is never accepted"),
        TokenAttack(name: "hs256-certificate-der", reason: "alg HS256 is never accepted"),
        TokenAttack(name: "hs512-public-key-pem-with-kid", reason: "alg HS512 is never accepted"),
        TokenAttack(name: "alg-es384-on-es256-key", reason: "alg ES384 does not fit"),
        // A valid signature from a key Portcullis does not trust, however it is announced.
        TokenAttack(name: "unknown-key-x5c", reason: "x5c chain does not lead to a trusted certificate"),
        TokenAttack(name: "unknown-key-kid", reason: "names no trusted key"),
        TokenAttack(name: "unknown-key-jwk", reason: "embedded jwk is not a trusted key"),
        TokenAttack(name: "unknown-key-no-hint", reason: "neither x5c, kid nor jwk"),
        // Key ids pointing elsewhere.
        TokenAttack(name: "kid-of-portcullis-signed-by-other-key", reason: "signature does not verify"),
        TokenAttack(name: "kid-elsewhere-beside-portcullis-jwk", reason: "names no trusted key"),
        TokenAttack(name: "kid-path-traversal", reason: "names no trusted key"),
        TokenAttack(name: "kid-empty", reason: "names no trusted key"),
        // x5c chains.
        TokenAttack(name: "x5c-untrusted-root", reason: "x5c chain does not lead to a trusted certificate"),
        TokenAttack(name: "x5c-forged-issuer-portcullis", reason: "x5c chain does not lead to a trusted certificate"),
        TokenAttack(name: "x5c-portcullis-cert-other-signature", reason: "signature does not verify"),
        TokenAttack(name: "x5c-not-base64", reason: "x5c entry is not base64"),
        TokenAttack(name: "x5c-empty-list", reason: "x5c is not a non-empty list"),
        TokenAttack(name: "crit-member", reason: "crit members"),
        // Claims.
        TokenAttack(name: "expired-beyond-leeway", reason: "token expired"),
        TokenAttack(name: "nbf-beyond-leeway", reason: "token not valid before"),
        TokenAttack(name: "aud-registry", reason: "contains none of"),
        TokenAttack(name: "aud-array-without-portcullis", reason: "contains none of"),
        TokenAttack(name: "iss-evil", reason: "is not trusted"),
        TokenAttack(name: "iss-missing", reason: "token has no iss claim"),
        TokenAttack(name: "exp-missing", reason: "claims are malformed"),
        TokenAttack(name: "exp-string", reason: "claims are malformed"),
        TokenAttack(name: "access-not-a-list", reason: "claims are malformed"),
        // Grants for another repository.
        TokenAttack(name: "repo-a-on-b", reason: "lack repository:alice/repo-a-on-b:pull", error: "insufficient_scope"),
        TokenAttack(name: "near-miss-grants", reason: "lack repository:alice/near-miss-grants:pull", error: "insufficient_scope"),
        TokenAttack(
            name: "pull-token-deleting", reason: "lack repository:alice/pull-token-deleting:delete", error: "insufficient_scope",
            method: "DELETE", path: "/v2/alice/pull-token-deleting/manifests/latest"),
        // Broken encodings.
        TokenAttack(name: "truncated-signature", reason: "signature does not verify"),
        TokenAttack(name: "signature-dropped", reason: "expected three dot-separated parts"),
        TokenAttack(name: "signature-empty", reason: "signature does not verify"),
        TokenAttack(name: "garbage-word", reason: "expected three dot-separated parts"),
        TokenAttack(name: "garbage-three-parts", reason: "header is not a JSON object"),
        TokenAttack(name: "garbage-dots", reason: "header is not a JSON object"),
        TokenAttack(name: "garbage-not-base64url", reason: "not base64url"),
        TokenAttack(name: "garbage-header-array", reason: "header is not a JSON object"),
        TokenAttack(name: "oversized-17k", reason: "the limit is 16384"),
        TokenAttack(name: "oversized-64k", reason: "the limit is 16384"),
        // Duplicate members, properly signed by Portcullis's own key.
        TokenAttack(name: "duplicate-header-alg", reason: "header has duplicate members"),
        TokenAttack(name: "duplicate-header-alg-escaped", reason: "header has duplicate members"),
        TokenAttack(name: "duplicate-header-x5c", reason: "header has duplicate members"),
        TokenAttack(name: "duplicate-payload-access-first-grants", reason: "duplicate"),
        TokenAttack(name: "duplicate-payload-access-last-grants", reason: "duplicate"),
        TokenAttack(name: "duplicate-payload-aud-first-good", reason: "duplicate"),
        TokenAttack(name: "duplicate-payload-aud-last-good", reason: "duplicate"),
        TokenAttack(name: "duplicate-payload-exp-first-valid", reason: "duplicate"),
        TokenAttack(name: "duplicate-payload-exp-last-valid", reason: "duplicate"),
        TokenAttack(name: "duplicate-payload-iss-first-good", reason: "duplicate"),
        TokenAttack(name: "duplicate-payload-iss-last-good", reason: "duplicate"),
        // The external issuer.
        TokenAttack(name: "idp-hs256-public-key-pem", reason: "alg HS256 is never accepted"),
        TokenAttack(name: "idp-hs256-public-key-der", reason: "alg HS256 is never accepted"),
        TokenAttack(name: "idp-alg-none", reason: "alg none is never accepted"),
        TokenAttack(name: "idp-signed-by-portcullis-key", reason: "x5c leaf certificate is not a trusted certificate"),
        TokenAttack(name: "portcullis-iss-signed-by-idp-key", reason: "names no trusted key"),
        TokenAttack(name: "idp-unknown-key", reason: "names no trusted key"),
        TokenAttack(name: "idp-aud-of-portcullis", reason: "contains none of"),
        TokenAttack(name: "idp-expired", reason: "token expired"),
        TokenAttack(name: "idp-grant-beyond-rules", reason: "token or rules lack repository:bob/idp-grant-beyond-rules:pull", error: "insufficient_scope", owner: "bob"),
    ]

    /// Tokens that must pass, so that each attack is refused for what it changes and nothing else.
    static let controls = ["valid", "valid-expired-within-leeway", "valid-nbf-within-leeway", "idp-valid"]

    @Test("the untampered tokens the attacks derive from are accepted (the registry answers, not Portcullis)")
    func controlsPass() async throws {
        let fixture = try await TokenAttackFixture.fresh()
        let requests = try Self.controls.map { name in
            RawHTTPRequest(method: "GET", target: "/v2/alice/\(name)/tags/list", headers: [("Authorization", "Bearer " + (try fixture.token(name)))])
        }
        let answers = try RawHTTPProbe.send(requests, port: fixture.deployment.gatewayPort)
        for (name, answer) in zip(Self.controls, answers) {
            // The repository does not exist: the registry's 404 NAME_UNKNOWN proves the token passed.
            #expect(answer.status == 404 && answer.body.contains("NAME_UNKNOWN"), "\(name): \(answer)")
        }
    }

    @Test("every hostile token gets a 401 challenge for the requested scope, a warning with the reason, and is never echoed")
    func attacksAreRefused() async throws {
        let fixture = try await TokenAttackFixture.fresh()
        let requests = try Self.attacks.map { attack in
            RawHTTPRequest(method: attack.method, target: attack.target, headers: [("Authorization", "Bearer " + (try fixture.token(attack.name)))])
        }
        let extra = try [
            // An empty Bearer, and a valid token smuggled beside a second Authorization header.
            RawHTTPRequest(method: "GET", target: "/v2/alice/empty-bearer/tags/list", headers: [("Authorization", "Bearer ")]),
            RawHTTPRequest(
                method: "GET", target: "/v2/alice/two-authorizations/tags/list",
                headers: [("Authorization", "Bearer " + fixture.token("valid")), ("Authorization", "Bearer x.y.z")]),
        ]
        let answers = try RawHTTPProbe.send(requests + extra, port: fixture.deployment.gatewayPort)
        try await Task.sleep(for: .milliseconds(300))  // let the log lines land

        var failures: [String] = []
        var refused = 0
        for (attack, answer) in zip(Self.attacks, answers) {
            let token = try fixture.token(attack.name)
            var problems: [String] = []
            let action = attack.method == "DELETE" ? "delete" : "pull"
            let repository = attack.target.dropFirst(4).components(separatedBy: attack.method == "DELETE" ? "/manifests/" : "/tags/list")[0]
            let challenge = answer.header("www-authenticate") ?? ""
            if answer.status != 401 { problems.append("status \(answer.status), expected 401") }
            if !challenge.hasPrefix("Bearer realm=\"\(fixture.deployment.url)/token\",service=\"portcullis\"") {
                problems.append("challenge \"\(challenge)\"")
            }
            if !challenge.contains("scope=\"repository:\(repository):\(action)\"") { problems.append("challenge lacks the scope: \"\(challenge)\"") }
            if !challenge.contains("error=\"\(attack.error)\"") { problems.append("challenge lacks error=\"\(attack.error)\": \"\(challenge)\"") }
            for leak in Self.leakProbes(token) where answer.body.contains(leak) || answer.headers.contains(where: { $0.value.contains(leak) }) {
                problems.append("the response echoes the token (\(leak.prefix(24))…)")
            }
            let warnings = fixture.warnings(for: attack.target)
            if !warnings.contains(where: { $0.contains(attack.reason) }) {
                problems.append("no warning naming \"\(attack.reason)\"; logged: \(warnings.map { $0.prefix(300) })")
            }
            if problems.isEmpty { refused += 1 } else { failures.append("\(attack.name): \(problems.joined(separator: "; "))") }
        }
        for (request, answer, reason) in zip3(extra, answers.suffix(extra.count), ["Authorization header without credentials", "more than one Authorization header"]) {
            let warned = fixture.warnings(for: request.target).contains { $0.contains(reason) }
            if answer.status == 401, answer.header("www-authenticate")?.contains("error=\"invalid_token\"") == true, warned {
                refused += 1
            } else {
                failures.append("\(request.target): \(answer); warned: \(warned)")
            }
        }
        let log = fixture.deployment.gateway.log
        let loggedTokens = Self.attacks.filter { attack in
            guard let token = fixture.tokens[attack.name], token.count >= 40 else { return false }
            return log.contains(token)
        }
        print(
            "token attacks: tried \(requests.count + extra.count), refused with challenge and logged reason: \(refused), "
                + "failures: \(failures.count), tokens written to the log: \(loggedTokens.count)")
        for failure in failures { print("  attack not refused properly: \(failure)") }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(loggedTokens.isEmpty, "tokens in the log: \(loggedTokens)")
        let health = try await fixture.deployment.curl(["-o", "/dev/null", "-w", "%{http_code}"], path: "/healthz")
        #expect(health.standardOutput == "200" && fixture.deployment.gateway.isRunning, "Portcullis after the attacks: \(health)")
    }

    @Test("a 1 MiB token gets a 401 challenge (or a 431) and a logged reason, and Portcullis keeps serving")
    func oneMebibyteToken() async throws {
        let fixture = try await TokenAttackFixture.fresh()
        let token = try fixture.token("oversized-1m")
        let target = "/v2/alice/oversized-1m/tags/list"
        let linesBefore = fixture.deployment.gateway.log.split(separator: "\n").count
        let answer = try RawHTTPProbe.send(
            [RawHTTPRequest(method: "GET", target: target, headers: [("Authorization", "Bearer " + token)])], port: fixture.deployment.gatewayPort)[0]
        try await Task.sleep(for: .milliseconds(300))
        print("1 MiB token: Portcullis answered \(answer)")
        let challenged = answer.status == 401 && answer.header("www-authenticate")?.contains("error=\"invalid_token\"") == true
        #expect(challenged || answer.status == 431, "a 1 MiB token must get a 401 challenge (or at least 431): \(answer)")
        #expect(!answer.body.contains(String(token.prefix(64))), "the response echoes the token")
        // The suite is serialized: whatever was logged since the request was sent is about it.
        let logged = fixture.deployment.gateway.log.split(separator: "\n").dropFirst(linesBefore)
        #expect(logged.contains(where: TokenAttackFixture.isWarning), "no warning line for the 1 MiB token; logged since: \(logged)")
        let health = try await fixture.deployment.curl(["-o", "/dev/null", "-w", "%{http_code}"], path: "/healthz")
        #expect(health.standardOutput == "200" && fixture.deployment.gateway.isRunning)
        let valid = try await fixture.deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: Bearer \(try fixture.token("valid"))"], path: "/v2/alice/valid/tags/list")
        #expect(valid.standardOutput == "404", "valid traffic after the 1 MiB token: \(valid)")
    }

    /// Pieces of `token` that must never come back: the whole token and its long segments.
    static func leakProbes(_ token: String) -> [String] {
        var probes: [String] = []
        if token.count >= 16 { probes.append(String(token.prefix(4096))) }
        for segment in token.split(separator: ".") where segment.count >= 24 { probes.append(String(segment.prefix(256))) }
        return probes
    }
}

private func zip3<A: Sequence, B: Sequence, C: Sequence>(_ a: A, _ b: B, _ c: C) -> [(A.Element, B.Element, C.Element)] {
    zip(zip(a, b), c).map { ($0.0, $0.1, $1) }
}

/// Crafts every token of the suite with Python's `cryptography`, byte by byte.
enum TokenFactory {
    static let script = #"""
        import base64, datetime, hashlib, hmac, json, sys, uuid
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        from cryptography.x509.oid import NameOID

        cfg = json.load(sys.stdin)
        now = cfg["now"]
        def read(path): return open(path, "rb").read()
        def b64u(data): return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        def compact(obj): return json.dumps(obj, separators=(",", ":"))
        def der_cert(cert): return cert.public_bytes(serialization.Encoding.DER)
        def spki(key): return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        def spki_pem(key): return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        def libtrust(pub):
            text = base64.b32encode(hashlib.sha256(spki(pub)).digest()[:30]).decode().rstrip("=")
            return ":".join(text[i:i + 4] for i in range(0, 48, 4))

        pk = serialization.load_pem_private_key(read(cfg["portcullis_key"]), None)
        pcert_pem = read(cfg["portcullis_cert"])
        pcert = x509.load_pem_x509_certificate(pcert_pem)
        ok = serialization.load_pem_private_key(read(cfg["other_key"]), None)
        ocert = x509.load_pem_x509_certificate(read(cfg["other_cert"]))
        ik = serialization.load_pem_private_key(read(cfg["idp_key"]), None)
        ipub_pem = read(cfg["idp_pub"])

        def alg_of(key):
            if isinstance(key, rsa.RSAPrivateKey): return "RS256"
            return {256: "ES256", 384: "ES384", 521: "ES512"}[key.curve.key_size]

        def sign(key, alg, data):
            if alg.startswith("HS"):
                return hmac.new(key, data, {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]).digest()
            h = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
            if isinstance(key, rsa.RSAPrivateKey):
                return key.sign(data, padding.PKCS1v15(), h)
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(h)))
            n = (key.curve.key_size + 7) // 8
            return r.to_bytes(n, "big") + s.to_bytes(n, "big")

        def jws(header, payload, key=None, alg=None):
            """header and payload are JSON texts (so they may hold anything) or objects."""
            h = header if isinstance(header, str) else compact(header)
            p = payload if isinstance(payload, str) else compact(payload)
            signing_input = (b64u(h.encode()) + "." + b64u(p.encode())).encode()
            signature = b"" if key is None else sign(key, alg, signing_input)
            return signing_input.decode() + "." + b64u(signature)

        x5c_p = [base64.b64encode(der_cert(pcert)).decode()]
        x5c_o = [base64.b64encode(der_cert(ocert)).decode()]
        palg = alg_of(pk)

        def claims(name, owner="alice", iss="portcullis", aud="portcullis", exp=300, nbf=0, actions=("pull",), **extra):
            c = {"iss": iss, "sub": owner, "aud": aud, "exp": now + exp, "nbf": now + nbf, "iat": now, "jti": str(uuid.uuid4()),
                 "access": [{"type": "repository", "name": owner + "/" + name, "actions": list(actions)}]}
            c.update(extra)
            return c

        def portcullis(name, header=None, payload=None, key=None, alg=None, **kw):
            return jws(header or {"alg": palg, "typ": "JWT", "x5c": x5c_p}, payload or claims(name, **kw), key or pk, alg or palg)

        def other(name, header, **kw):
            return jws(header, claims(name, **kw), ok, alg_of(ok))

        def idp(name, header=None, key=None, alg=None, **kw):
            kw.setdefault("iss", cfg["idp_issuer"]); kw.setdefault("aud", cfg["idp_audience"])
            return jws(header or {"alg": "RS256", "typ": "JWT", "kid": libtrust(ik.public_key())}, claims(name, **kw), key or ik, alg or "RS256")

        def certificate(subject, issuer, public_key, signer, ca):
            b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                 .issuer_name(issuer).public_key(public_key).serial_number(x509.random_serial_number())
                 .not_valid_before(datetime.datetime.fromtimestamp(now - 3600, datetime.timezone.utc))
                 .not_valid_after(datetime.datetime.fromtimestamp(now + 86400, datetime.timezone.utc))
                 .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
            return b.sign(signer, hashes.SHA256())

        attacker_ca_key = ec.generate_private_key(ec.SECP256R1())
        attacker_ca = certificate("portcullis token signer", x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portcullis token signer")]),
                                  attacker_ca_key.public_key(), attacker_ca_key, True)
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = certificate("leaf", attacker_ca.subject, leaf_key.public_key(), attacker_ca_key, False)
        forged = certificate("forged", pcert.subject, leaf_key.public_key(), attacker_ca_key, False)
        def b64cert(cert): return base64.b64encode(der_cert(cert)).decode()

        pub = pk.public_key()
        jwk_o = None
        on = ok.public_key().public_numbers()
        if isinstance(ok, ec.EllipticCurvePrivateKey):
            size = (ok.curve.key_size + 7) // 8
            jwk_o = {"kty": "EC", "crv": "P-%d" % ok.curve.key_size, "x": b64u(on.x.to_bytes(size, "big")), "y": b64u(on.y.to_bytes(size, "big"))}
        else:
            jwk_o = {"kty": "RSA", "n": b64u(on.n.to_bytes((on.n.bit_length() + 7) // 8, "big")), "e": b64u(on.e.to_bytes(3, "big"))}
        pn = pub.public_numbers()
        psize = (pk.curve.key_size + 7) // 8 if isinstance(pk, ec.EllipticCurvePrivateKey) else 0
        jwk_p = {"kty": "EC", "crv": "P-%d" % pk.curve.key_size, "x": b64u(pn.x.to_bytes(psize, "big")), "y": b64u(pn.y.to_bytes(psize, "big"))} if psize else None

        t = {}
        t["valid"] = portcullis("valid")
        t["valid-expired-within-leeway"] = portcullis("valid-expired-within-leeway", exp=-5, nbf=-305)
        t["valid-nbf-within-leeway"] = portcullis("valid-nbf-within-leeway", nbf=30)
        t["idp-valid"] = idp("idp-valid")

        t["alg-none"] = jws({"alg": "none", "typ": "JWT"}, claims("alg-none"))
        t["alg-none-with-x5c"] = jws({"alg": "none", "typ": "JWT", "x5c": x5c_p}, claims("alg-none-with-x5c"))
        t["alg-none-capitalised"] = jws({"alg": "None", "typ": "JWT", "x5c": x5c_p}, claims("alg-none-capitalised"))
        t["alg-missing"] = portcullis("alg-missing", header={"typ": "JWT", "x5c": x5c_p})

        for name, secret, alg, header in [
            ("hs256-public-key-pem", spki_pem(pub), "HS256", {"x5c": x5c_p}),
            ("hs256-public-key-der", spki(pub), "HS256", {"x5c": x5c_p}),
            ("hs256-certificate-pem", pcert_pem, "HS256", {"x5c": x5c_p}),
            ("hs256-certificate-der", der_cert(pcert), "HS256", {}),
            ("hs512-public-key-pem-with-kid", spki_pem(pub), "HS512", {"kid": libtrust(pub)}),
        ]:
            t[name] = jws(dict({"alg": alg, "typ": "JWT"}, **header), claims(name), secret, alg)
        t["alg-es384-on-es256-key"] = portcullis("alg-es384-on-es256-key", header={"alg": "ES384", "typ": "JWT", "x5c": x5c_p}, alg="ES384")

        t["unknown-key-x5c"] = other("unknown-key-x5c", {"alg": alg_of(ok), "typ": "JWT", "x5c": x5c_o})
        t["unknown-key-kid"] = other("unknown-key-kid", {"alg": alg_of(ok), "typ": "JWT", "kid": libtrust(ok.public_key())})
        t["unknown-key-jwk"] = other("unknown-key-jwk", {"alg": alg_of(ok), "typ": "JWT", "jwk": jwk_o})
        t["unknown-key-no-hint"] = other("unknown-key-no-hint", {"alg": alg_of(ok), "typ": "JWT"})
        t["kid-of-portcullis-signed-by-other-key"] = other("kid-of-portcullis-signed-by-other-key", {"alg": alg_of(ok), "typ": "JWT", "kid": libtrust(pub)})
        t["kid-elsewhere-beside-portcullis-jwk"] = other("kid-elsewhere-beside-portcullis-jwk", {"alg": alg_of(ok), "typ": "JWT", "kid": libtrust(ok.public_key()), "jwk": jwk_p})
        t["kid-path-traversal"] = other("kid-path-traversal", {"alg": alg_of(ok), "typ": "JWT", "kid": "../../../../../dev/null"})
        t["kid-empty"] = other("kid-empty", {"alg": alg_of(ok), "typ": "JWT", "kid": ""})

        t["x5c-untrusted-root"] = jws({"alg": "ES256", "typ": "JWT", "x5c": [b64cert(leaf), b64cert(attacker_ca)]}, claims("x5c-untrusted-root"), leaf_key, "ES256")
        t["x5c-forged-issuer-portcullis"] = jws({"alg": "ES256", "typ": "JWT", "x5c": [b64cert(forged)] + x5c_p}, claims("x5c-forged-issuer-portcullis"), leaf_key, "ES256")
        t["x5c-portcullis-cert-other-signature"] = other("x5c-portcullis-cert-other-signature", {"alg": alg_of(ok), "typ": "JWT", "x5c": x5c_p})
        t["x5c-not-base64"] = portcullis("x5c-not-base64", header={"alg": palg, "typ": "JWT", "x5c": ["not base64 at all!"]})
        t["x5c-empty-list"] = portcullis("x5c-empty-list", header={"alg": palg, "typ": "JWT", "x5c": []})
        t["crit-member"] = portcullis("crit-member", header={"alg": palg, "typ": "JWT", "x5c": x5c_p, "crit": ["exp"]})

        t["expired-beyond-leeway"] = portcullis("expired-beyond-leeway", exp=-120, nbf=-420)
        t["nbf-beyond-leeway"] = portcullis("nbf-beyond-leeway", nbf=120)
        t["aud-registry"] = portcullis("aud-registry", aud="registry")
        t["aud-array-without-portcullis"] = portcullis("aud-array-without-portcullis", aud=["registry", "other"])
        t["iss-evil"] = portcullis("iss-evil", iss="evil")
        c = claims("iss-missing"); del c["iss"]
        t["iss-missing"] = portcullis("iss-missing", payload=c)
        c = claims("exp-missing"); del c["exp"]
        t["exp-missing"] = portcullis("exp-missing", payload=c)
        c = claims("exp-string"); c["exp"] = str(now + 300)
        t["exp-string"] = portcullis("exp-string", payload=c)
        c = claims("access-not-a-list"); c["access"] = "repository:alice/access-not-a-list:pull"
        t["access-not-a-list"] = portcullis("access-not-a-list", payload=c)

        t["repo-a-on-b"] = portcullis("repo-a-on-b", payload=claims("repo-a"))
        c = claims("near-miss-grants")
        c["access"] = [{"type": "repository", "name": n, "actions": ["pull", "push", "delete", "*"]} for n in
                       ["alice/near-miss-grants/sub", "alice/near-miss-grants-x", "Alice/near-miss-grants", "alice/near-miss-grants/",
                        "alice/near-miss-grant", "alice//near-miss-grants", " alice/near-miss-grants", "alice/near-miss-grants "]]
        c["access"] += [{"type": "registry", "name": "alice/near-miss-grants", "actions": ["*"]},
                        {"type": "Repository", "name": "alice/near-miss-grants", "actions": ["pull"]},
                        {"type": "repository", "name": "alice/near-miss-grants", "actions": ["Pull", "read", "pull "]}]
        t["near-miss-grants"] = portcullis("near-miss-grants", payload=c)
        t["pull-token-deleting"] = portcullis("pull-token-deleting", actions=("pull", "push"))

        valid = portcullis("truncated-signature")
        t["truncated-signature"] = valid[:-4]
        t["signature-dropped"] = portcullis("signature-dropped").rsplit(".", 1)[0]
        t["signature-empty"] = portcullis("signature-empty").rsplit(".", 1)[0] + "."
        t["garbage-word"] = "garbage"
        t["garbage-three-parts"] = "aGVsbG8.d29ybGQ.c2lnbmF0dXJl"
        t["garbage-dots"] = ".."
        t["garbage-not-base64url"] = "e30!.e30!.e30!"
        t["garbage-header-array"] = b64u(b"[1,2]") + "." + b64u(b"{}") + "." + b64u(b"sig")
        def padded(name, size):
            c = claims(name); c["pad"] = ""
            base = len(portcullis(name, payload=c))
            c["pad"] = "A" * max(0, int((size - base) * 3 / 4))
            return portcullis(name, payload=c)
        t["oversized-17k"] = padded("oversized-17k", 17 * 1024)
        t["oversized-64k"] = padded("oversized-64k", 64 * 1024)
        t["oversized-1m"] = padded("oversized-1m", 1024 * 1024)

        hp = compact({"alg": palg, "typ": "JWT", "x5c": x5c_p})
        t["duplicate-header-alg"] = portcullis("duplicate-header-alg", header=hp[:-1] + ',"alg":"none"}')
        t["duplicate-header-alg-escaped"] = portcullis("duplicate-header-alg-escaped", header=hp[:-1] + ',"al\\u0067":"HS256"}')
        t["duplicate-header-x5c"] = portcullis("duplicate-header-x5c", header=hp[:-1] + ',"x5c":' + compact(x5c_o) + "}")

        def duplicated(name, member, good, bad, good_first):
            c = claims(name)
            c[member] = good if good_first else bad
            text = compact(c)
            return portcullis(name, payload=text[:-1] + ',"%s":%s}' % (member, compact(bad if good_first else good)))
        def grant_for(name): return [{"type": "repository", "name": "alice/" + name, "actions": ["pull"]}]
        t["duplicate-payload-access-first-grants"] = duplicated("duplicate-payload-access-first-grants", "access", grant_for("duplicate-payload-access-first-grants"), [], True)
        t["duplicate-payload-access-last-grants"] = duplicated("duplicate-payload-access-last-grants", "access", grant_for("duplicate-payload-access-last-grants"), [], False)
        t["duplicate-payload-aud-first-good"] = duplicated("duplicate-payload-aud-first-good", "aud", "portcullis", "registry", True)
        t["duplicate-payload-aud-last-good"] = duplicated("duplicate-payload-aud-last-good", "aud", "portcullis", "registry", False)
        t["duplicate-payload-exp-first-valid"] = duplicated("duplicate-payload-exp-first-valid", "exp", now + 300, now - 3600, True)
        t["duplicate-payload-exp-last-valid"] = duplicated("duplicate-payload-exp-last-valid", "exp", now + 300, now - 3600, False)
        t["duplicate-payload-iss-first-good"] = duplicated("duplicate-payload-iss-first-good", "iss", "portcullis", "evil", True)
        t["duplicate-payload-iss-last-good"] = duplicated("duplicate-payload-iss-last-good", "iss", "portcullis", "evil", False)

        ipub = serialization.load_pem_public_key(ipub_pem)
        t["idp-hs256-public-key-pem"] = idp("idp-hs256-public-key-pem", header={"alg": "HS256", "typ": "JWT", "kid": libtrust(ipub)}, key=ipub_pem, alg="HS256")
        t["idp-hs256-public-key-der"] = idp("idp-hs256-public-key-der", header={"alg": "HS256", "typ": "JWT", "kid": libtrust(ipub)}, key=spki(ipub), alg="HS256")
        t["idp-alg-none"] = jws({"alg": "none", "typ": "JWT", "kid": libtrust(ipub)}, claims("idp-alg-none", iss=cfg["idp_issuer"], aud=cfg["idp_audience"]))
        t["idp-signed-by-portcullis-key"] = idp("idp-signed-by-portcullis-key", header={"alg": palg, "typ": "JWT", "x5c": x5c_p}, key=pk, alg=palg)
        t["portcullis-iss-signed-by-idp-key"] = idp("portcullis-iss-signed-by-idp-key", iss="portcullis", aud="portcullis")
        t["idp-unknown-key"] = idp("idp-unknown-key", header={"alg": alg_of(ok), "typ": "JWT", "kid": libtrust(ok.public_key())}, key=ok, alg=alg_of(ok))
        t["idp-aud-of-portcullis"] = idp("idp-aud-of-portcullis", aud="portcullis")
        t["idp-expired"] = idp("idp-expired", exp=-120, nbf=-420)
        t["idp-grant-beyond-rules"] = idp("idp-grant-beyond-rules", owner="bob", sub="alice")
        json.dump(t, sys.stdout)
        """#
}
