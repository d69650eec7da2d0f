import Foundation
import Policy
import Testing
import TestSupport

// Differential authorization: the real registry (distribution 2.8.2) is the oracle.
//
// Every generated request goes to the registry with a valid token that grants nothing. Whatever
// the registry routes to a repository it then challenges, and its 401 names the exact access it
// wants; whatever it does not route (redirects, 404s, 405s) it answers without authorizing
// anything. Portcullis must require exactly the challenged access, or refuse the request.

/// SplitMix64: a small, fully deterministic generator, so every run sends the same requests.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One generated request.
struct ProbeRequest: Hashable, Sendable, CustomStringConvertible {
    var method: String
    /// The raw request target, path and query, as it goes on the wire.
    var target: String
    /// Extra header lines (only the form-body cases have any).
    var headers: [[String]] = []
    var body: String?

    /// Split like Portcullis's server splits a target: at the first `?`.
    var path: String { target.firstIndex(of: "?").map { String(target[..<$0]) } ?? target }
    var query: String? { target.firstIndex(of: "?").map { String(target[target.index(after: $0)...]) } }

    var description: String {
        var text = "\(method) \(target)"
        if let body { text += " (body \(body))" }
        return text
    }

    func raw(authorization: String) -> RawHTTPRequest {
        RawHTTPRequest(
            method: method, target: target, headers: [("Authorization", authorization)] + headers.map { ($0[0], $0[1]) },
            body: body.map { Data($0.utf8) })
    }
}

/// Access as a comparable value: `type:name` → set of action words.
struct AccessSet: Equatable, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    var entries: [String: Set<String>] = [:]

    init(dictionaryLiteral elements: (String, Set<String>)...) {
        for (resource, actions) in elements { entries[resource, default: []].formUnion(actions) }
    }

    /// Reads the `scope` parameter of a `WWW-Authenticate: Bearer` challenge. Resources and actions
    /// come in Go's random map order, so they become sets. A resource name that holds a space (the
    /// registry echoes an unvalidated `from`) makes the item unparsable: `nil`.
    static func fromChallenge(_ header: String) -> AccessSet? {
        guard let range = header.range(of: "scope=\"") else { return [:] }
        let rest = header[range.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        var result: AccessSet = [:]
        for item in rest[..<end].split(separator: " ") {
            guard let first = item.firstIndex(of: ":"), let last = item.lastIndex(of: ":"), first != last else { return nil }
            let actions = item[item.index(after: last)...].split(separator: ",").map(String.init)
            result.entries[String(item[..<last]), default: []].formUnion(actions)
        }
        return result
    }

    /// What Portcullis's scopes amount to, in the registry's words (`*` as the registry prints it).
    static func fromScopes(_ scopes: [Scope]) -> AccessSet {
        var result: AccessSet = [:]
        for scope in scopes {
            result.entries["\(scope.resource.type):\(scope.resource.name)", default: []].formUnion(scope.actions.words)
        }
        return result
    }

    var isEmpty: Bool { entries.isEmpty }

    var description: String {
        entries.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.sorted().joined(separator: ","))" }.joined(separator: " ")
    }

    /// The repository names involved.
    var repositories: Set<String> {
        Set(entries.keys.filter { $0.hasPrefix("repository:") }.map { String($0.dropFirst("repository:".count)) })
    }
}

/// The generated request set: a structured cross product plus seeded random mutations.
enum DifferentialCorpus {
    static let seed: UInt64 = 0x0009_D1FF_A0C0_2026
    static let randomCount = 2000

    static let hex64 = String(repeating: "0123456789abcdef", count: 4)
    static let digest = "sha256:" + hex64

    static let methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    static let oddMethods = ["PROPFIND", "TRACE", "get", "Get", "MKCOL", "FOO", "LINK", "COPY"]

    static let validNames = [
        "a", "alice/app", "team/app", "x/y/z/w", "my.app", "my-app", "my--app", "my---app", "my_app", "my__app",
        "a1/b2.c3-d4_e5__f6", "0/9", "manifests/tags", "blobs/uploads", "tags/list", "v2/v2", "library/ubuntu",
        "a.b/c-d/e__f", "referrers/x", "alice/blobs", "alice/manifests", "alice/tags", "uploads", "list", "v2",
    ]
    static let invalidNames = [
        "App", "alice/App", "ALICE/APP", "a..b", "a___b", "a_-b", "-a", "a-", ".a", "a.", "_a", "a_", "a.-b", "a_.b", "a/-b",
        "a+b", "a~b", "a:b", "a@b", "a;b", "a,b", "a'b", "a$b", "a!b", "a*b", "a(b)", "a=b", "é", "a\\b", "a//b", "a/./b",
        "a/../b", "./a", "../a", "a/.", "a/..", ".", "..", "_catalog", "a/_catalog", "alice/app/", "alice//app", "",
        // The registry's route pattern accepts a leading registry host (upper case, ports), which names never carry.
        "localhost:5000/alice/app", "LOCALHOST/a", "App.Example.com/alice/app", "registry.example.com:443/a", "a:5000/b",
    ]
    static let encodedNames = [
        "a%2Fb", "alice%2fapp", "%61lice/app", "alice/%61pp", "alice/%2e%2e/bob", "alice%2F..%2Fbob", "%2e%2e/bob",
        "alice/%2E", "alice/%2e", "a%20b", "a%00b", "alice/app%2Ftags%2Flist", "a%2", "a%zz", "%C3%A9", "alice%252Fapp",
        "a%2eb", "a%2Db", "a%5Fb", "a%41b", "alice%2F%2E%2E%2Fbob", "alice/%2F/bob", "%2Falice/app", "alice/app%2F",
        "a%2E%2Eb", "alice%5capp", "alice%3Fapp", "alice%23app", "alice%0Aapp",
    ]
    static var longNames: [String] {
        [
            String(repeating: "a", count: 255), String(repeating: "a", count: 256), String(repeating: "a", count: 1000),
            Array(repeating: "ab", count: 85).joined(separator: "/"),  // 254 characters
            Array(repeating: "ab", count: 86).joined(separator: "/"),  // 257 characters
            "alice/" + String(repeating: "x", count: 249),  // exactly 255
            "alice/" + String(repeating: "x", count: 250),  // 256
            Array(repeating: "a", count: 200).joined(separator: "/"),
            String(repeating: "a", count: 5000),
            "a" + String(repeating: "-", count: 200) + "b",
            Array(repeating: "a", count: 100).joined(separator: "__"),
        ]
    }

    static let tags = [
        "latest", "v1", "v1.0", "V1_0-rc.1", "_x", "-x", ".x", "x.", "x-", "__", "a:b", String(repeating: "t", count: 128),
        String(repeating: "t", count: 129), "..", ".", "%2e%2e", "v%31", "x%2Fy", "é", "x+y", "x~y", "",
    ]
    static let digests = [
        digest, "sha256:" + hex64.prefix(32), "sha256:abc", "SHA256:" + hex64, "sha512:" + hex64 + hex64,
        "sha256+b64:abcDEF_-=", "sha256:", ":abc", "sha256:" + hex64.uppercased(), "sha256:abc=", "sha256:a%2Fb",
        "sha256:..", "a.b+c_d-e:f", "sha256:abc:def", "sha256-:abc", "s:x", "sha256%3A" + hex64, "sha256:abc/",
        "Sha256:" + hex64, "sha256:" + hex64 + ".", "1:1",
    ]
    static let uploadIDs = [
        "6a8f1b0a-6d2b-4c3e-9d0e-0123456789ab", "abc", "a.b", "a=b", "_", "..", ".", "a%2Fb", "ABC-def_ghi.jkl=", "a:b", "a+b",
        "a~b", "%2e%2e", "x/y", "é",
    ]

    /// The parts after the name, by endpoint kind, each with a few arguments.
    static func suffixes(pick: (([String]) -> String)? = nil) -> [String] {
        func one(_ list: [String]) -> String { pick?(list) ?? list[0] }
        return [
            "/manifests/" + one(tags + digests), "/manifests/" + one(digests + tags), "/tags/list", "/blobs/" + one(digests),
            "/blobs/uploads/", "/blobs/uploads/" + one(uploadIDs), "/referrers/" + one(digests), "", "/",
            "/tags/list/", "/blobs/uploads", "/manifests/", "/blobs/", "/tags", "/tags/", "/tags/List", "/manifests",
            "/blobs/uploads//", "/manifests/latest/", "/blobs/" + digest + "/", "/tags/list/x",
        ]
    }

    static let queries: [String?] = [
        nil, "", "n=10&last=a", "from=alice/app", "mount=\(digest)&from=bob/secret", "mount=\(digest)", "from=",
        "from=bob/secret&from=alice/app", "from=Bad%20Name", "from=bob%2Fsecret", "from=bob/secret;x", "x=1;from=bob/secret",
        "from=bob+secret", "from=..%2Fbob", "FROM=bob/secret", "from=bob/secret#frag", "mount=\(digest)&from=BOB/secret",
        "from=%zz", "from=bob/secret%", "from=%62ob/secret", "mount=a&mount=b&from=bob/secret",
        "mount=\(digest)&from=localhost:5000/bob/secret", "from=a/../b", "from=bob//secret", "from=alice/app/",
        "from=bob/secret&from=", "from=&from=bob/secret", "%66rom=bob/secret", "from%3Dbob/secret", "from=bob/secret&digest=\(digest)",
        "_state=abc&digest=\(digest)", "from=" + String(repeating: "b", count: 300), "from=b%C3%A9", "from=bob%00", "a=%zz&from=bob/secret",
        "from=bob/secret&a=%zz", "from=x&from=x", "from=alice/app&mount=\(digest)", "from=team/app",
    ]

    static let prefixes = ["/v2/", "//v2/", "/v2//", "/V2/", "/v2/./", "/v2/../v2/", "/%76%32/", "/v2%2F", "/v2/%2e/", "/v2", "/v3/", "/", "http://127.0.0.1/v2/", "HTTP://evil.example/v2/"]

    /// Percent-encodes the byte at a random position of `path` beyond `/v2/`.
    static func encodeOneByte(_ path: String, using generator: inout SeededGenerator) -> String {
        var bytes = Array(path.utf8)
        guard bytes.count > 4 else { return path }
        let index = Int.random(in: 4..<bytes.count, using: &generator)
        let byte = bytes[index]
        let upper = Bool.random(using: &generator)
        let hex = String(byte, radix: 16, uppercase: upper)
        let escaped = Array(("%" + (hex.count == 1 ? "0" + hex : hex)).utf8)
        bytes.replaceSubrange(index...index, with: escaped)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The whole set: deterministic for a given ``seed``, without duplicates.
    static func generate() -> [ProbeRequest] {
        var seen = Set<ProbeRequest>()
        var result: [ProbeRequest] = []
        func add(_ request: ProbeRequest) {
            if seen.insert(request).inserted { result.append(request) }
        }
        let allNames = validNames + invalidNames + encodedNames + longNames

        // Each combination goes out with a few methods, rotating through all of them, so every
        // method meets every name, endpoint and query somewhere without the product exploding.
        var turn = 0
        func rotating(_ count: Int, of list: [String] = methods) -> [String] {
            defer { turn += 1 }
            return (0..<count).map { list[(turn * count + $0) % list.count] }
        }

        // 1. Every name × every endpoint shape: GET, and one more method in turn.
        for name in allNames {
            for suffix in suffixes() {
                for method in ["GET"] + rotating(1) { add(ProbeRequest(method: method, target: "/v2/" + name + suffix)) }
            }
        }
        // 2. Every method on every endpoint, and every argument of every endpoint with three methods in turn.
        for method in methods + oddMethods {
            for target in [
                "/v2/", "/v2/_catalog", "/v2/_catalog/", "/v2", "/v2/_catalog?n=1&last=a", "/v2/?from=bob/secret",
                "/v2/_catalog?from=bob/secret", "/v2/alice/app/manifests/latest", "/v2/alice/app/manifests/" + digest,
                "/v2/alice/app/tags/list", "/v2/alice/app/blobs/" + digest, "/v2/alice/app/blobs/uploads/",
                "/v2/alice/app/blobs/uploads/" + uploadIDs[0], "/v2/alice/app/referrers/" + digest,
                "/v2/alice/app/blobs/uploads/?mount=\(digest)&from=bob/secret",
            ] {
                add(ProbeRequest(method: method, target: target))
            }
        }
        let all = methods + oddMethods
        for reference in tags + digests {
            for method in rotating(3, of: all) { add(ProbeRequest(method: method, target: "/v2/alice/app/manifests/" + reference)) }
        }
        for blob in digests {
            for method in rotating(3, of: all) { add(ProbeRequest(method: method, target: "/v2/alice/app/blobs/" + blob)) }
            for method in rotating(2, of: all) { add(ProbeRequest(method: method, target: "/v2/alice/app/referrers/" + blob)) }
        }
        for id in uploadIDs {
            for method in rotating(3, of: all) { add(ProbeRequest(method: method, target: "/v2/alice/app/blobs/uploads/" + id)) }
        }
        // 3. Every query on the endpoints a query can matter to: POST, and two more methods in turn.
        for query in queries {
            for path in [
                "/v2/alice/app/blobs/uploads/", "/v2/alice/app/tags/list", "/v2/alice/app/manifests/latest", "/v2/alice/app/blobs/" + digest,
                "/v2/alice/app/blobs/uploads/abc", "/v2/bob/secret/blobs/uploads/",
            ] {
                for method in ["POST"] + rotating(2) { add(ProbeRequest(method: method, target: path + (query.map { "?" + $0 } ?? ""))) }
            }
        }
        // 4. Every prefix on a few shapes, with three methods in turn.
        for prefix in prefixes {
            for rest in ["alice/app/tags/list", "alice/app/blobs/uploads/", "_catalog", "", "alice/app/manifests/latest"] {
                for method in rotating(3) { add(ProbeRequest(method: method, target: prefix + rest)) }
            }
        }
        // 5. Every valid name on every endpoint with every method it serves, plainly and with a
        //    valid `from` (distribution asks for pull on `from` on every repository route).
        let served: [(suffix: String, methods: [String])] = [
            ("/manifests/latest", ["GET", "HEAD", "PUT", "DELETE"]), ("/manifests/" + digest, ["GET", "HEAD", "PUT", "DELETE"]),
            ("/tags/list", ["GET", "HEAD"]), ("/blobs/" + digest, ["GET", "HEAD", "DELETE"]), ("/blobs/uploads/", ["POST"]),
            ("/blobs/uploads/" + uploadIDs[0], ["GET", "HEAD", "PATCH", "PUT", "DELETE"]),
        ]
        for (index, name) in validNames.enumerated() {
            let source = validNames[(index * 7 + 3) % validNames.count]
            for (suffix, methods) in served {
                for method in methods {
                    add(ProbeRequest(method: method, target: "/v2/" + name + suffix))
                    add(ProbeRequest(method: method, target: "/v2/" + name + suffix + "?from=" + source + (suffix.hasSuffix("uploads/") ? "&mount=" + digest : "")))
                }
            }
        }

        // 6. Seeded random combinations and mutations; a third of them well-formed throughout.
        var generator = SeededGenerator(seed: seed)
        let components = (validNames + invalidNames + encodedNames).flatMap { $0.split(separator: "/", omittingEmptySubsequences: false) }.map(String.init)
        let validComponents = validNames.flatMap { $0.split(separator: "/") }.map(String.init)
        var made = 0
        while made < randomCount {
            let method = Bool.random(using: &generator) || made % 5 != 0
                ? methods.randomElement(using: &generator)! : oddMethods.randomElement(using: &generator)!
            let prefix = Int.random(in: 0..<10, using: &generator) < 8 ? "/v2/" : prefixes.randomElement(using: &generator)!
            let name: String
            let shape = Int.random(in: 0..<3, using: &generator)
            if shape == 0 {
                let count = Int.random(in: 1...5, using: &generator)
                name = (0..<count).map { _ in validComponents.randomElement(using: &generator)! }.joined(separator: "/")
            } else if shape == 1 {
                name = allNames.randomElement(using: &generator)!
            } else {
                let count = Int.random(in: 1...4, using: &generator)
                name = (0..<count).map { _ in components.randomElement(using: &generator)! }.joined(separator: "/")
            }
            let suffix = suffixes(pick: { $0.randomElement(using: &generator)! }).randomElement(using: &generator)!
            let tail = Int.random(in: 0..<10, using: &generator) < 8 ? "" : ["/", "/.", "//", "/..", "#x", "%2F", "/%2e"].randomElement(using: &generator)!
            var path = prefix + name + suffix + tail
            if Int.random(in: 0..<5, using: &generator) == 0 { path = encodeOneByte(path, using: &generator) }
            let query = Int.random(in: 0..<3, using: &generator) == 0 ? queries.randomElement(using: &generator)! : nil
            let request = ProbeRequest(method: method, target: path + (query.map { "?" + $0 } ?? ""))
            if seen.insert(request).inserted {
                result.append(request)
                made += 1
            }
        }
        return result
    }

    /// Blob mounts whose `from` and `mount` travel in a form body: Go's `r.FormValue` reads
    /// POST, PUT and PATCH form bodies before the query.
    static let formBodies: [ProbeRequest] = {
        let form = ["Content-Type", "application/x-www-form-urlencoded"]
        var list: [ProbeRequest] = []
        for method in ["POST", "PUT", "PATCH"] {
            for (target, body) in [
                ("/v2/alice/app/blobs/uploads/", "mount=\(digest)&from=bob/secret"),
                ("/v2/alice/app/blobs/uploads/?mount=\(digest)&from=alice/other", "from=bob/secret"),
                ("/v2/alice/app/blobs/uploads/abc", "from=bob/secret"),
                ("/v2/alice/app/manifests/latest", "from=bob/secret"),
            ] {
                list.append(ProbeRequest(method: method, target: target, headers: [form], body: body))
            }
            // Go parses the media type case-insensitively, with parameters and spaces, and reads
            // only the first Content-Type header.
            for (contentTypes, body) in [
                (["Application/X-WWW-Form-URLencoded"], "from=bob/secret"),
                ([" application/x-www-form-urlencoded ; charset=utf-8"], "from=bob/secret"),
                (["application/x-www-form-urlencoded; ;"], "from=bob/secret"),
                (["application/x-www-form-urlencoded", "application/octet-stream"], "from=bob/secret"),
                (["application/octet-stream", "application/x-www-form-urlencoded"], "from=bob/secret"),
                (["application/x-www-form-urlencoded"], "a=1&from=bob%2Fsecret&mount=x"),
            ] {
                list.append(
                    ProbeRequest(
                        method: method, target: "/v2/alice/app/blobs/uploads/?mount=\(digest)",
                        headers: contentTypes.map { ["Content-Type", $0] }, body: body))
            }
            // r.FormValue parses multipart/form-data bodies too.
            let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\nbob/secret\r\n--XyZ--\r\n"
            list.append(
                ProbeRequest(
                    method: method, target: "/v2/alice/app/blobs/uploads/?mount=\(digest)",
                    headers: [["Content-Type", "multipart/form-data; boundary=XyZ"]], body: multipart))
        }
        return list
    }()
}

/// How one request came out.
enum DifferentialVerdict: Equatable {
    /// Portcullis refuses the request outright.
    case refused
    /// Portcullis requires exactly what the registry challenged for (or, for `/v2/`, a valid identity).
    case matched
    /// Portcullis authorizes a route the pinned registry does not have (referrers on 2.8): the
    /// registry answers 404 whatever the token, so nothing is reached.
    case unknownToRegistry
    /// Anything else: the message says what each side decided.
    case mismatch(String)
}

/// The registry and the generated requests, shared by the tests of the suite.
struct DifferentialFixture: Sendable {
    let deployment: Deployment
    let requests: [ProbeRequest]
    let registry: [RawHTTPResponse]
    let registryToken: String
    let clientToken: String

    static let shared = Task { () throws -> DifferentialFixture in
        let deployment = try await Deployment.start(
            users: ["alice": "alice-secret", "bob": "bob-secret"],
            rules: #"  - {account: "*", name: "${account}/**", actions: [pull, push, delete]}"#)
        let key = try SigningKey(
            privateKeyPEM: String(contentsOfFile: deployment.directory + "/keys/token.key", encoding: .utf8),
            certificateChainPEM: String(contentsOfFile: deployment.directory + "/keys/token.crt", encoding: .utf8))
        let minter = try TokenMinter(key: key, hint: .x5c)
        func nothing(audience: String) throws -> String {
            try minter.mint(
                TokenClaims(issuer: "portcullis", subject: "probe", audience: audience, scopes: [], now: Date(), lifetime: 300, id: UUID().uuidString))
        }
        let registryToken = try nothing(audience: "registry")
        let clientToken = try nothing(audience: "portcullis")
        let requests = DifferentialCorpus.generate()
        let registry = try RawHTTPProbe.send(
            requests.map { $0.raw(authorization: "Bearer " + registryToken) }, port: deployment.registryPort)
        return DifferentialFixture(
            deployment: deployment, requests: requests, registry: registry, registryToken: registryToken, clientToken: clientToken)
    }

    /// Compares Portcullis's decision for one request with the registry's answer to it.
    ///
    /// A 401 names exactly what the registry wants: Portcullis must require that, no more, no
    /// less. Any other answer to a valid token that grants nothing means the registry authorized
    /// nothing: it redirected the path (301, cleaning it), routed it nowhere (404), or found no
    /// handler for the method (405: distribution's access records are empty for unmapped
    /// methods). Such requests reach no repository whatever token comes with them, but Portcullis
    /// promises to refuse paths the registry rewrites and never to name a repository the
    /// registry does not, so anything but a refusal (or a bare identity for `/v2/`) is a mismatch;
    /// the one exception is the referrers route, which 3.x serves and 2.8 does not know.
    static func judge(_ request: ProbeRequest, registry: RawHTTPResponse, portcullis: RequiredAccess) -> DifferentialVerdict {
        if case .rejected = portcullis { return .refused }
        let said = "registry: \(registry.status) \(registry.header("www-authenticate") ?? registry.error ?? "(no challenge)")"
        switch (registry.status, portcullis) {
        case (401, .scopes(let scopes)):
            guard let challenged = AccessSet.fromChallenge(registry.header("www-authenticate") ?? "") else {
                return .mismatch("\(said); Portcullis requires \(AccessSet.fromScopes(scopes)) (challenge unreadable)")
            }
            let required = AccessSet.fromScopes(scopes)
            if required == challenged { return .matched }
            let kind = required.repositories == challenged.repositories ? "ACTION MISMATCH" : "REPOSITORY CONFUSION"
            return .mismatch("\(kind): \(said); Portcullis requires \(required)")
        case (401, .authenticated):
            return .mismatch("\(said); Portcullis lets any valid identity through")
        case (200..<300, .authenticated) where request.path == "/v2/":
            return .matched
        case (404, .scopes(let scopes)):
            // distribution 2.8 has no referrers route; every other 404 means Portcullis saw a
            // route where the registry sees none.
            if (try? Route(path: request.path))?.endpoint.template == "referrers" { return .unknownToRegistry }
            return .mismatch("\(said); Portcullis requires \(AccessSet.fromScopes(scopes)) for a path the registry routes nowhere")
        case (_, .scopes(let scopes)):
            return .mismatch("\(said); Portcullis requires \(AccessSet.fromScopes(scopes)) where the registry authorizes nothing")
        case (_, .authenticated):
            return .mismatch("\(said); Portcullis lets any valid identity through")
        case (_, .rejected):
            return .refused
        }
    }
}

@Suite("differential authorization against the real registry 2.8.2", .serialized)
struct DifferentialAuthorizationTests {
    @Test("the token granting nothing is valid: the registry answers /v2/ with 200")
    func probeTokenIsValid() async throws {
        let fixture = try await DifferentialFixture.shared.value
        let base = try RawHTTPProbe.send(
            [RawHTTPRequest(method: "GET", target: "/v2/", headers: [("Authorization", "Bearer " + fixture.registryToken)])],
            port: fixture.deployment.registryPort)
        #expect(base[0].status == 200, "\(base[0])")
        #expect(fixture.requests.count > 4000, "the corpus shrank to \(fixture.requests.count) requests")
        let failed = zip(fixture.requests, fixture.registry).filter { $0.1.status == 0 }
        #expect(failed.isEmpty, "the registry gave no answer to: \(failed.prefix(5).map { "\($0.0) (\($0.1.error ?? ""))" })")
    }

    @Test("for every generated request, AccessMap requires exactly the access the registry challenges for, or refuses it")
    func accessMapAgreesWithRegistry() async throws {
        let fixture = try await DifferentialFixture.shared.value
        var counts: [String: Int] = [:]
        var mismatches: [String] = []
        var registryStatuses: [Int: Int] = [:]
        var routedButRefused: [RouteRejection.Kind: Int] = [:]
        for (request, answer) in zip(fixture.requests, fixture.registry) {
            registryStatuses[answer.status, default: 0] += 1
            let decision = AccessMap.requiredAccess(method: request.method, path: request.path, query: request.query)
            if answer.status == 401, case .rejected(let rejection) = decision { routedButRefused[rejection.kind, default: 0] += 1 }
            switch DifferentialFixture.judge(request, registry: answer, portcullis: decision) {
            case .refused: counts["refused", default: 0] += 1
            case .matched: counts["matched", default: 0] += 1
            case .unknownToRegistry: counts["unknown to 2.8", default: 0] += 1
            case .mismatch(let why): mismatches.append("\(request) → \(why)")
            }
        }
        print(
            """
            differential (AccessMap vs registry 2.8.2, seed \(String(DifferentialCorpus.seed, radix: 16))): \
            requests tried: \(fixture.requests.count), refused by Portcullis: \(counts["refused", default: 0]), \
            matched: \(counts["matched", default: 0]), referrers (no route in 2.8, registry 404s): \(counts["unknown to 2.8", default: 0]), \
            mismatches: \(mismatches.count); registry statuses: \(registryStatuses.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")); \
            challenged by the registry but refused by Portcullis: \(routedButRefused[.methodNotAllowed, default: 0]) method not served, \
            \(routedButRefused[.notFound, default: 0]) name or route invalid, \(routedButRefused[.badRequest, default: 0]) encoded/ambiguous path or bad from
            """)
        for line in mismatches.prefix(40) { print("  mismatch: \(line)") }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(10).joined(separator: "\n"))")
        #expect(counts["matched", default: 0] > 900, "too few requests reach a registry route for the comparison to mean much")
    }

    @Test("any request the registry routes to a repository is never authorized by AccessMap against another repository")
    func noRepositoryConfusion() async throws {
        let fixture = try await DifferentialFixture.shared.value
        var confused: [String] = []
        var compared = 0
        for (request, answer) in zip(fixture.requests, fixture.registry) where answer.status == 401 {
            guard case .scopes(let scopes) = AccessMap.requiredAccess(method: request.method, path: request.path, query: request.query)
            else { continue }
            compared += 1
            let required = AccessSet.fromScopes(scopes).repositories
            let challenged = AccessSet.fromChallenge(answer.header("www-authenticate") ?? "")?.repositories
            if challenged != required {
                confused.append("\(request): registry \(challenged.map { $0.sorted().description } ?? "unreadable"), Portcullis \(required.sorted())")
            }
        }
        #expect(compared > 900)
        #expect(confused.isEmpty, "\(confused.count) requests: \(confused.prefix(10).joined(separator: "\n"))")
    }

    @Test("paths the registry redirects (dot segments, empty segments, encodings) are refused by AccessMap, never forwarded")
    func redirectsAreRefused() async throws {
        let fixture = try await DifferentialFixture.shared.value
        var redirected = 0
        var forwarded: [String] = []
        for (request, answer) in zip(fixture.requests, fixture.registry) where (300..<400).contains(answer.status) {
            redirected += 1
            if case .rejected = AccessMap.requiredAccess(method: request.method, path: request.path, query: request.query) { continue }
            forwarded.append("\(request) → registry \(answer.status) Location \(answer.header("location") ?? "-")")
        }
        #expect(redirected > 100, "the corpus should make the registry redirect often")
        #expect(forwarded.isEmpty, "\(forwarded.prefix(10).joined(separator: "\n"))")
    }

    @Test("through Portcullis, every generated request is challenged for exactly the registry's scope, or refused before the registry")
    func portcullisChallengesAgreeWithRegistry() async throws {
        let fixture = try await DifferentialFixture.shared.value
        let started = ContinuousClock.now
        let answers = try RawHTTPProbe.send(
            fixture.requests.map { $0.raw(authorization: "Bearer " + fixture.clientToken) }, port: fixture.deployment.gatewayPort)
        var refused = 0
        var matched = 0
        var filteredCatalog = 0
        var mismatches: [String] = []
        for ((request, registry), portcullis) in zip(zip(fixture.requests, fixture.registry), answers) {
            let said = "registry \(registry.status) \(registry.header("www-authenticate") ?? "-"); Portcullis \(portcullis)"
            switch portcullis.status {
            case 400, 404, 405:
                refused += 1
            case 401:
                let mine = AccessSet.fromChallenge(portcullis.header("www-authenticate") ?? "")
                let theirs = registry.status == 401 ? AccessSet.fromChallenge(registry.header("www-authenticate") ?? "") : nil
                if let mine, mine == theirs, !mine.isEmpty {
                    matched += 1
                } else if registry.status == 404, (try? Route(path: request.path))?.endpoint.template == "referrers" {
                    matched += 1
                } else {
                    mismatches.append("\(request): \(said)")
                }
            case 200 where registry.status == 200 && request.path == "/v2/":
                matched += 1
            case 200 where request.path == "/v2/_catalog" && ["GET", "HEAD"].contains(request.method)
                && AccessSet.fromChallenge(registry.header("www-authenticate") ?? "") == ["registry:catalog": ["*"]]:
                // Without registry:catalog:* Portcullis serves a catalog filtered to what the caller
                // may pull: the probe may pull nothing, so the list must be empty.
                if request.method == "HEAD" || portcullis.body.contains(#""repositories":[]"#) {
                    filteredCatalog += 1
                } else {
                    mismatches.append("\(request): the filtered catalog shows the probe something: \(said)")
                }
            default:
                mismatches.append("\(request): \(said)")
            }
        }
        let elapsed = ContinuousClock.now - started
        print(
            "differential (through Portcullis): requests tried: \(answers.count), refused by Portcullis: \(refused), "
                + "matched: \(matched), filtered catalogs (empty for the probe): \(filteredCatalog), mismatches: \(mismatches.count), in \(elapsed)")
        for line in mismatches.prefix(40) { print("  mismatch: \(line)") }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(10).joined(separator: "\n"))")
        let health = try await fixture.deployment.curl(["-o", "/dev/null", "-w", "%{http_code}"], path: "/healthz")
        #expect(health.standardOutput == "200")
    }

    @Test("a blob mount source sent in a form body is required like the registry reads it, or the request is refused")
    func formBodyMountSourceIsNotIgnored() async throws {
        let fixture = try await DifferentialFixture.shared.value
        let requests = DifferentialCorpus.formBodies
        let registry = try RawHTTPProbe.send(
            requests.map { $0.raw(authorization: "Bearer " + fixture.registryToken) }, port: fixture.deployment.registryPort)
        // alice may push to alice/** and nothing else; bob/secret is out of her reach.
        let basic = "Basic " + Data("alice:alice-secret".utf8).base64EncodedString()
        let portcullis = try RawHTTPProbe.send(requests.map { $0.raw(authorization: basic) }, port: fixture.deployment.gatewayPort)
        var problems: [String] = []
        var readByRegistry = 0
        for ((request, registryAnswer), answer) in zip(zip(requests, registry), portcullis) {
            let challenged = AccessSet.fromChallenge(registryAnswer.header("www-authenticate") ?? "") ?? [:]
            guard challenged.repositories.contains("bob/secret") else { continue }  // the registry ignores this body
            readByRegistry += 1
            let refused = [400, 404, 405, 415].contains(answer.status)
            let challengedForSource = answer.status == 401
                && (AccessSet.fromChallenge(answer.header("www-authenticate") ?? "")?.repositories.contains("bob/secret") ?? false)
            if !(refused || challengedForSource) {
                problems.append(
                    "\(request): registry challenges for \(challenged); "
                        + "AccessMap requires \(AccessMap.requiredAccess(method: request.method, path: request.path, query: request.query)); "
                        + "Portcullis answered alice \(answer)")
            }
        }
        print(
            "differential (form bodies): requests tried: \(requests.count), mount source read from the body by the registry: "
                + "\(readByRegistry), mismatches: \(problems.count)")
        for line in problems { print("  form-body mismatch: \(line)") }
        #expect(readByRegistry >= 12, "the registry should read `from` out of most of these bodies")
        #expect(problems.isEmpty, "\(problems.count) of \(requests.count): \(problems.prefix(4).joined(separator: "\n"))")
    }
}
