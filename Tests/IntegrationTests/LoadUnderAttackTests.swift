import Foundation
import Testing
import TestSupport

/// Issue 9's load case: a flood of invalid credentials and many concurrent valid pulls at once,
/// against a real Portcullis in front of docker-registry 2.8.2.
///
/// The flood comes from other loopback addresses (127.0.0.2–127.0.0.5) than the pulls
/// (127.0.0.1), as it would from other hosts, so per-address throttling can do its job without
/// touching the valid clients. It mixes wrong passwords for an existing account, unknown
/// accounts, malformed `Authorization` headers, garbage Bearer tokens and Bearer tokens with a
/// broken signature, at the token endpoint and at `/v2/`.
@Suite("load: invalid credentials and valid pulls at once", .serialized)
struct LoadUnderAttackTests {
    static let invalidRequests = 10_000
    static let concurrentPulls = 256

    @Test("10,000 invalid-credential requests and 256 concurrent valid pulls: every pull completes with the right bytes, no invalid request gets a 2xx, Portcullis stays up and its memory flat")
    func floodAndPulls() async throws {
        let deployment = try await Deployment.start(
            users: ["alice": "alice-secret", "mallory": "mallory-secret"],
            rules: """
                  - {account: "*", name: "${account}/**", actions: [pull, push, delete]}
                """)
        defer { deployment.stop() }
        let tally = HardeningTally(suite: "load under attack", tests: 1)
        var counts = HardeningTally.Counts()
        defer { tally.record("invalid credentials and valid pulls", counts, alive: deployment.gateway.isRunning) }

        // One image with a 1 MiB layer, so the pulls stream while the flood runs.
        let layer = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) })
        let layout = FileManager.default.temporaryDirectory.appendingPathComponent("load-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: layout) }
        _ = try OCIImageLayout.write(to: layout, tag: "v1", layers: [["layer.bin": layer]], label: "load")
        let push = try await deployment.skopeo([
            "copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", deployment.credentials("alice"),
            "oci:\(layout):v1", "docker://\(deployment.host)/alice/load:v1",
        ])
        #expect(push.succeeded, "push: \(push)")

        let input = LoadProbe.Input(
            port: deployment.gatewayPort, service: "portcullis", repository: "alice/load", tag: "v1",
            credentials: deployment.credentials("alice"), invalidRequests: Self.invalidRequests,
            concurrentPulls: Self.concurrentPulls, attackerAddresses: ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"])

        // A first round of pulls alone warms caches and connection pools; memory is measured from there.
        let warmUp = try await LoadProbe.run(LoadProbe.Input(copying: input, invalidRequests: 0))
        #expect(warmUp.pullsFailed == 0, "warm-up pulls failed: \(warmUp.failures)")
        let baseline = try ProcessFigures.sample(deployment.gateway.pid)

        let sampler = Task { () -> Int in
            var peak = 0
            while !Task.isCancelled {
                if let figures = try? ProcessFigures.sample(deployment.gateway.pid) { peak = max(peak, figures.residentKiB) }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return peak
        }
        let result = try await LoadProbe.run(input)
        sampler.cancel()
        let peakKiB = await sampler.value
        // Descriptors may stay up by the upstream keep-alive pool (up to 256 idle connections to the
        // registry, closed after 60 s idle); client connections must all be gone.
        let settled = await ProcessFigures.settle(
            deployment.gateway.pid, descriptors: baseline.descriptors + 256, residentKiB: baseline.residentKiB + 48 * 1024,
            timeout: .seconds(20))
        let clientConnections = try Self.establishedConnections(toLocalPort: deployment.gatewayPort)

        counts.tried = result.invalidSent + result.pullsCompleted + result.pullsFailed
        counts.refused = result.invalidRefused
        print(
            "load under attack: \(result.invalidSent) invalid requests (\(result.invalidStatuses)), "
                + "\(result.pullsCompleted) valid pulls by \(Self.concurrentPulls) clients in \(result.seconds) s, "
                + "pull latency p50 \(result.pullMillisecondsP50) ms p99 \(result.pullMillisecondsP99) ms; "
                + "Portcullis baseline \(baseline), peak \(peakKiB / 1024) MiB resident, after \(settled.figures) "
                + "with \(clientConnections) client connections open")

        #expect(result.invalidSent == Self.invalidRequests)
        #expect(result.invalidAccepted.isEmpty, "invalid credentials were let through: \(result.invalidAccepted.prefix(5))")
        #expect(result.invalidRefused + result.invalidCut == Self.invalidRequests)
        #expect(result.pullsFailed == 0, "valid pulls failed: \(result.failures.prefix(5))")
        #expect(result.pullsCompleted >= Self.concurrentPulls, "only \(result.pullsCompleted) pulls completed")
        #expect(result.pullsDuringFlood >= Self.concurrentPulls, "only \(result.pullsDuringFlood) pulls finished while the flood ran")
        #expect(deployment.gateway.isRunning)
        #expect(settled.withinLimits, "memory or descriptors did not come back: baseline \(baseline), after \(settled.figures)")
        #expect(clientConnections == 0, "\(clientConnections) client connections are still open after every client left")
        #expect(peakKiB <= baseline.residentKiB + 96 * 1024, "resident memory peaked at \(peakKiB / 1024) MiB from a baseline of \(baseline)")
        #expect(try await Command("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", deployment.url + "/healthz"]).runInBackground().standardOutput == "200")
    }

    /// Established IPv4 TCP connections whose local end is `port` (Portcullis's side of client
    /// connections), from `/proc/net/tcp`.
    static func establishedConnections(toLocalPort port: Int) throws -> Int {
        let table = try String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)
        let localPort = String(format: ":%04X", port)
        return table.split(separator: "\n").dropFirst().filter { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            return fields.count > 3 && fields[1].hasSuffix(localPort) && fields[3] == "01"
        }.count
    }
}

/// Runs the flood and the pulls from one `python3` process (standard library only).
enum LoadProbe {
    struct Input: Codable, Sendable {
        var port: Int
        var service: String
        var repository: String
        var tag: String
        var credentials: String
        var invalidRequests: Int
        var concurrentPulls: Int
        var attackerAddresses: [String]
    }

    struct Result: Decodable, Sendable {
        var invalidSent: Int
        var invalidRefused: Int
        var invalidCut: Int
        var invalidStatuses: [String: Int]
        var invalidAccepted: [String]
        var pullsCompleted: Int
        var pullsDuringFlood: Int
        var pullsFailed: Int
        var failures: [String]
        var seconds: Double
        var pullMillisecondsP50: Int
        var pullMillisecondsP99: Int
    }

    static func run(_ input: Input) async throws -> Result {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = try encoder.encode(input)
        let output = try await Command("python3", ["-c", script], standardInput: data, timeout: .seconds(600))
            .runInBackground().checked()
        guard let line = output.standardOutput.split(separator: "\n").last else { throw HarnessError("load probe printed nothing: \(output)") }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Result.self, from: Data(line.utf8))
    }

    /// Pullers loop (token, manifest, every blob checked against its digest) until the flood is
    /// over and each has pulled at least once; flood workers each own a keep-alive connection
    /// from an attacker address and reconnect when Portcullis closes it.
    static let script = #"""
        import base64, hashlib, http.client, json, socket, sys, threading, time, urllib.parse
        cfg = json.load(sys.stdin)
        port, repo, tag = cfg["port"], cfg["repository"], cfg["tag"]
        basic = "Basic " + base64.b64encode(cfg["credentials"].encode()).decode()
        scope = "repository:%s:pull" % repo
        token_path = "/token?service=%s&scope=%s" % (cfg["service"], urllib.parse.quote(scope))
        lock = threading.Lock()
        flood_done = threading.Event()
        out = {"invalid_sent": 0, "invalid_refused": 0, "invalid_cut": 0, "invalid_statuses": {}, "invalid_accepted": [],
               "pulls_completed": 0, "pulls_during_flood": 0, "pulls_failed": 0, "failures": []}
        latencies = []

        def connect(source=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120, source_address=(source, 0) if source else None)
            c.connect()
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return c

        def get(c, path, headers):
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            return r.status, r.read(), r

        def fresh_token():
            c = connect()
            try:
                status, body, _ = get(c, token_path, {"Authorization": basic})
                if status != 200:
                    raise RuntimeError("token endpoint answered %d: %s" % (status, body[:200]))
                return json.loads(body)["token"]
            finally:
                c.close()

        def pull_once(c):
            token = fresh_token()
            auth = {"Authorization": "Bearer " + token}
            status, body, _ = get(c, "/v2/%s/manifests/%s" % (repo, tag),
                                  dict(auth, Accept="application/vnd.oci.image.manifest.v1+json"))
            if status != 200:
                raise RuntimeError("manifest: %d %s" % (status, body[:200]))
            manifest = json.loads(body)
            for blob in [manifest["config"]] + manifest["layers"]:
                status, data, _ = get(c, "/v2/%s/blobs/%s" % (repo, blob["digest"]), auth)
                if status != 200 or "sha256:" + hashlib.sha256(data).hexdigest() != blob["digest"] or len(data) != blob["size"]:
                    raise RuntimeError("blob %s: status %d, %d bytes" % (blob["digest"], status, len(data)))
            return token

        def puller():
            c = None
            pulled = 0
            while pulled == 0 or not flood_done.is_set():
                started = time.monotonic()
                try:
                    if c is None:
                        c = connect()
                    pull_once(c)
                    pulled += 1
                    with lock:
                        out["pulls_completed"] += 1
                        if not flood_done.is_set():
                            out["pulls_during_flood"] += 1
                        latencies.append(time.monotonic() - started)
                except Exception as e:
                    with lock:
                        out["pulls_failed"] += 1
                        out["failures"].append(repr(e)[:300])
                    if c is not None:
                        c.close()
                    c = None
                    if out["pulls_failed"] > 50:
                        return
                if cfg["invalid_requests"] == 0:
                    return

        # A token whose signature no longer verifies: the last signature characters changed.
        broken = None

        def invalid_request(i):
            kind = i % 6
            if kind == 0:
                return token_path, {"Authorization": "Basic " + base64.b64encode(b"mallory:wrong-%d" % i).decode()}
            if kind == 1:
                return token_path, {"Authorization": "Basic " + base64.b64encode(b"nobody-%d:x" % i).decode()}
            if kind == 2:
                return "/v2/%s/manifests/%s" % (repo, tag), {"Authorization": "Bearer " + "A" * (i % 300 + 1)}
            if kind == 3:
                return "/v2/%s/blobs/sha256:%s" % (repo, "0" * 64), {"Authorization": "Bearer " + broken}
            if kind == 4:
                return "/v2/%s/tags/list" % repo, {"Authorization": "Basic !!not-base64!!"}
            return "/v2/%s/manifests/%s" % (repo, tag), {"Authorization": "Basic " + base64.b64encode(b"alice-typo:%d" % i).decode()}

        def flooder(worker, indices):
            source = cfg["attacker_addresses"][worker % len(cfg["attacker_addresses"])]
            c = None
            for i in indices:
                path, headers = invalid_request(i)
                status = None
                for attempt in (0, 1):
                    try:
                        if c is None:
                            c = connect(source)
                        status, body, r = get(c, path, headers)
                        if r.will_close:
                            c.close()
                            c = None
                        break
                    except Exception:
                        if c is not None:
                            c.close()
                        c = None
                with lock:
                    out["invalid_sent"] += 1
                    if status is None:
                        out["invalid_cut"] += 1
                        continue
                    out["invalid_statuses"][str(status)] = out["invalid_statuses"].get(str(status), 0) + 1
                    if 200 <= status < 300:
                        out["invalid_accepted"].append("%s %s -> %d" % (path, headers, status))
                    else:
                        out["invalid_refused"] += 1
            if c is not None:
                c.close()

        started = time.monotonic()
        if cfg["invalid_requests"] > 0:
            valid = fresh_token()
            head, payload, signature = valid.split(".")
            broken = ".".join([head, payload, signature[:-6] + ("AAAAAA" if not signature.endswith("AAAAAA") else "BBBBBB")])
        pullers = [threading.Thread(target=puller) for _ in range(cfg["concurrent_pulls"])]
        workers = 64
        flooders = [threading.Thread(target=flooder, args=(w, range(w, cfg["invalid_requests"], workers))) for w in range(workers)]
        for t in pullers + flooders:
            t.start()
        for t in flooders:
            t.join()
        flood_done.set()
        for t in pullers:
            t.join()
        latencies.sort()
        def percentile(p):
            return int(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))]) if latencies else 0
        out["seconds"] = round(time.monotonic() - started, 1)
        out["pull_milliseconds_p50"] = percentile(0.5)
        out["pull_milliseconds_p99"] = percentile(0.99)
        out["failures"] = out["failures"][:20]
        out["invalid_accepted"] = out["invalid_accepted"][:20]
        print(json.dumps(out))
        """#
}

extension LoadProbe.Input {
    init(copying other: LoadProbe.Input, invalidRequests: Int) {
        self = other
        self.invalidRequests = invalidRequests
    }
}
