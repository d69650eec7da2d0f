import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

// Upstream faults (issue 9): the registry killed mid-upload and mid-download, paused (SIGSTOP),
// and replaced by a server that answers garbage. Clients must get an OCI error or a cut
// connection, never a false success; Portcullis keeps serving and recovers without a restart.
// The helpers (HardeningTally, ProcessFigures, BackgroundProcess, BlobFiles) live in
// HostileHTTPTests.swift.

@Suite("registry faults seen through Portcullis")
struct UpstreamFaultTests {
    static let tally = HardeningTally(suite: "upstream faults", tests: 5)
    static let rules = #"  - {account: "*", name: "${account}/**", actions: [pull, push, delete]}"#

    static func start(_ extraConfiguration: String = "") async throws -> Deployment {
        try await Deployment.start(users: ["alice": "alice-secret"], rules: rules, extraConfiguration: extraConfiguration)
    }

    /// `curl -w %{http_code}` of a GET with alice's credentials.
    static func status(_ deployment: Deployment, _ path: String, maxTime: Int = 30) async throws -> String {
        try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "--max-time", String(maxTime), "-u", deployment.credentials("alice")], path: path)
            .standardOutput
    }

    /// `timeouts.upstream_response` for the paused-registry test.
    static let upstreamResponseTimeout = 3.0

    static func healthy(_ deployment: Deployment) async throws -> Bool {
        try await Command("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", deployment.url + "/healthz"]).runInBackground().standardOutput == "200"
    }

    @Test("registry killed (SIGKILL) mid-upload: the client gets an error status or a cut connection, never a 2xx; Portcullis serves meanwhile and recovers after the registry restarts")
    func killedMidUpload() async throws {
        let deployment = try await Self.start()
        defer { deployment.stopAndDiscardStorage() }
        var counts = HardeningTally.Counts()
        defer { Self.tally.record("registry killed mid-upload", counts, alive: deployment.gateway.isRunning) }
        let files = try await BlobFiles.make(randomMiB: 8, zeroMiB: 128)
        defer { files.remove() }
        let repository = "alice/killed-upload"
        #expect(try await files.push(files.path, digest: files.digest, to: deployment, repository: repository) == "201")
        try await Task.sleep(for: .milliseconds(500))
        let baseline = try ProcessFigures.sample(deployment.gateway.pid)

        var uploads: [(BackgroundProcess, String)] = []
        for _ in 0..<3 {
            let location = try await files.startUpload(to: deployment, repository: repository)
            uploads.append((try BackgroundProcess.curl([
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("alice"), "-H", "Content-Type: application/octet-stream",
                "--limit-rate", "4M", "-T", files.zeroPath, location + "&digest=" + files.zeroDigest,
            ]), files.uploadData(deployment, repository: repository, location: location)))
        }
        // Kill the registry once it has stored part of every upload (all watched at once: one slow
        // starter must not let the others finish meanwhile).
        let (underWay, finishedEarly) = try await onOwnThread { [uploads] in
            let deadline = ContinuousClock.now + .seconds(60)
            var reached = Set<Int>()
            while ContinuousClock.now < deadline, reached.count < uploads.count, !uploads.contains(where: { $0.0.completed }) {
                for (index, upload) in uploads.enumerated() where !reached.contains(index) && fileReaches(upload.1, atLeast: 2 << 20, timeout: .zero) {
                    reached.insert(index)
                }
                usleep(20_000)
            }
            let finishedEarly = uploads.filter { $0.0.completed }.count
            deployment.killRegistry()
            return (reached.count, finishedEarly)
        }
        #expect(underWay == 3 && finishedEarly == 0, "the uploads were not under way when the registry died: \(underWay) under way, \(finishedEarly) done")
        var outcomes: [String] = []
        for (upload, _) in uploads {
            let (exit, code) = await upload.wait(timeout: .seconds(60))
            counts.tried += 1
            outcomes.append("exit \(exit) status \(code)")
            if code.hasPrefix("2") {
                Issue.record("an upload cut by the registry's death got \(code)")
            } else {
                counts.refused += 1
            }
        }

        // Portcullis keeps serving: liveness, the token endpoint, and a clear 503 for the registry.
        let down = try await deployment.curl(["-i", "--max-time", "10", "-u", deployment.credentials("alice")], path: "/v2/\(repository)/tags/list")
        counts.tried += 3
        await #expect(try Self.healthy(deployment))
        await #expect(try Self.status(deployment, "/token?service=portcullis&scope=repository:\(repository):pull") == "200")
        #expect(down.standardOutput.hasPrefix("HTTP/1.1 503") && down.standardOutput.contains(#""code":"UNAVAILABLE""#), "\(down)")
        if down.standardOutput.hasPrefix("HTTP/1.1 5") { counts.refused += 1 }

        try await deployment.restartRegistry()
        let again = try await files.push(files.path, digest: files.digest, to: deployment, repository: repository + "-again")
        let pulled = try await files.pull(from: deployment, repository: repository + "-again", digest: files.digest)
        counts.tried += 2
        #expect(again == "201", "an upload after the registry came back")
        #expect(pulled == files.digest)
        let settled = await ProcessFigures.settle(deployment.gateway.pid, descriptors: baseline.descriptors + 4, residentKiB: baseline.residentKiB + 48 * 1024)
        print("registry killed mid-upload: uploads \(outcomes); Portcullis baseline \(baseline), after \(settled.figures)")
        #expect(settled.withinLimits, "descriptors or memory did not return: baseline \(baseline), after \(settled.figures)")
        #expect(deployment.gateway.isRunning)
    }

    @Test("registry killed (SIGKILL) mid-download: the client sees a cut transfer whose bytes do not hash to the digest, never a success; the blob downloads intact after the restart")
    func killedMidDownload() async throws {
        let deployment = try await Self.start()
        defer { deployment.stopAndDiscardStorage() }
        var counts = HardeningTally.Counts()
        defer { Self.tally.record("registry killed mid-download", counts, alive: deployment.gateway.isRunning) }
        // Larger than every socket buffer between registry and client together: when the
        // registry dies, most of the blob has not left it yet.
        let files = try await BlobFiles.make(randomMiB: 1, zeroMiB: 160)
        defer { files.remove() }
        let repository = "alice/killed-download"
        #expect(try await files.push(files.zeroPath, digest: files.zeroDigest, to: deployment, repository: repository) == "201")
        let baseline = try ProcessFigures.sample(deployment.gateway.pid)

        var downloads: [(BackgroundProcess, String)] = []
        for index in 0..<3 {
            let output = files.zeroPath + ".got\(index)"
            downloads.append((try BackgroundProcess.curl([
                "-s", "-o", output, "-w", "%{http_code}", "-u", deployment.credentials("alice"), "--limit-rate", "8M",
                deployment.url + "/v2/\(repository)/blobs/\(files.zeroDigest)",
            ]), output))
        }
        defer { for (_, output) in downloads { try? FileManager.default.removeItem(atPath: output) } }
        let underWay = try await onOwnThread { [downloads] in
            let underWay = downloads.filter { fileReaches($0.1, atLeast: 2 << 20) }.count
            deployment.killRegistry()
            return underWay
        }
        #expect(underWay == 3, "only \(underWay) of 3 downloads were under way when the registry died")
        var outcomes: [String] = []
        var falseSuccesses: [String] = []
        for (download, output) in downloads {
            let (exit, code) = await download.wait(timeout: .seconds(90))
            let received = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
            let hash = try await Command("sha256sum", [output]).runInBackground().standardOutput.prefix(64)
            counts.tried += 1
            let outcome = "exit \(exit) status \(code), \(received) of \(files.zeroSize) bytes"
            outcomes.append(outcome)
            let success = exit == 0 && code.hasPrefix("2")
            if !success { counts.refused += 1 }
            if success || "sha256:" + hash == files.zeroDigest { falseSuccesses.append(outcome) }
        }
        #expect(falseSuccesses.isEmpty, "a download cut by the registry's death looked successful or complete: \(falseSuccesses)")
        await #expect(try Self.healthy(deployment))
        counts.tried += 1

        try await deployment.restartRegistry()
        let pulled = try await files.pull(from: deployment, repository: repository, digest: files.zeroDigest)
        counts.tried += 1
        #expect(pulled == files.zeroDigest, "the blob after the registry came back")
        let settled = await ProcessFigures.settle(deployment.gateway.pid, descriptors: baseline.descriptors + 4, residentKiB: baseline.residentKiB + 48 * 1024)
        print("registry killed mid-download: downloads \(outcomes); Portcullis baseline \(baseline), after \(settled.figures)")
        #expect(settled.withinLimits, "descriptors or memory did not return: baseline \(baseline), after \(settled.figures)")
        #expect(deployment.gateway.isRunning)
    }

    @Test("registry paused (SIGSTOP): a request gets 504 with an OCI error after timeouts.upstream_response, /healthz and /token still answer; after SIGCONT requests succeed again without restarting Portcullis")
    func pausedRegistry() async throws {
        let deployment = try await Self.start("timeouts:\n  upstream_response: \(Int(Self.upstreamResponseTimeout))")
        defer { deployment.stopAndDiscardStorage() }
        var counts = HardeningTally.Counts()
        defer { Self.tally.record("registry paused", counts, alive: deployment.gateway.isRunning) }
        await #expect(try Self.status(deployment, "/v2/alice/paused/tags/list") == "404")
        let baseline = try ProcessFigures.sample(deployment.gateway.pid)
        let registry = try #require(deployment.registryPID)
        kill(registry, SIGSTOP)
        defer { kill(registry, SIGCONT) }

        var stalled: [String] = []
        for path in ["/v2/alice/paused/tags/list", "/v2/alice/paused/manifests/latest", "/v2/"] {
            let result = try await deployment.curl(["-w", "\n%{http_code} %{time_total}", "--max-time", "60", "-u", deployment.credentials("alice")], path: path)
            counts.tried += 1
            let lines = result.standardOutput.split(separator: "\n")
            let (status, seconds) = (lines.last?.split(separator: " ").first ?? "", Double(lines.last?.split(separator: " ").last ?? "") ?? -1)
            stalled.append("\(path): status \(status) after \(seconds) s")
            if status == "504" { counts.refused += 1 }
            #expect(status == "504" && result.standardOutput.contains(#""code":"UNAVAILABLE""#), "a request to a paused registry must get an OCI 504: \(result)")
            #expect(seconds >= Self.upstreamResponseTimeout - 0.5, "answered before timeouts.upstream_response: \(result)")
        }
        let health = try await Command("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", deployment.url + "/healthz"]).runInBackground()
        let token = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "-u", deployment.credentials("alice")], path: "/token?service=portcullis&scope=repository:alice/paused:pull")
        counts.tried += 2
        #expect(health.standardOutput == "200", "/healthz while the registry is paused: \(health)")
        #expect(token.standardOutput == "200", "/token while the registry is paused: \(token)")

        kill(registry, SIGCONT)
        var after = ""
        for _ in 0..<20 {
            after = try await Self.status(deployment, "/v2/alice/paused/tags/list", maxTime: 10)
            if after == "404" { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        counts.tried += 1
        #expect(after == "404", "after SIGCONT the registry answers through Portcullis again")
        let settled = await ProcessFigures.settle(deployment.gateway.pid, descriptors: baseline.descriptors + 6, residentKiB: baseline.residentKiB + 32 * 1024)
        print("registry paused: \(stalled); after SIGCONT \(after); Portcullis baseline \(baseline), after \(settled.figures)")
        #expect(settled.withinLimits, "descriptors or memory did not return: baseline \(baseline), after \(settled.figures)")
        #expect(deployment.gateway.isRunning)
    }

    @Test("a registry pause longer than timeouts.request_head during an upload delays the upload but does not cut it")
    func pauseDuringUpload() async throws {
        let deployment = try await Self.start("timeouts:\n  request_head: 2")
        defer { deployment.stopAndDiscardStorage() }
        var counts = HardeningTally.Counts()
        defer { Self.tally.record("registry paused during an upload", counts, alive: deployment.gateway.isRunning) }
        let files = try await BlobFiles.make(randomMiB: 48, zeroMiB: 1)
        defer { files.remove() }
        let repository = "alice/paused-upload"
        let location = try await files.startUpload(to: deployment, repository: repository)
        let upload = try BackgroundProcess.curl([
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("alice"), "-H", "Content-Type: application/octet-stream",
            "--limit-rate", "12M", "-T", files.path, location + "&digest=" + files.digest,
        ])
        let registry = try #require(deployment.registryPID)
        let data = files.uploadData(deployment, repository: repository, location: location)
        let (underWay, finishedEarly) = try await onOwnThread {
            let underWay = fileReaches(data, atLeast: 2 << 20)
            kill(registry, SIGSTOP)
            let finishedEarly = upload.completed
            sleep(5)
            kill(registry, SIGCONT)
            return (underWay, finishedEarly)
        }
        #expect(underWay && !finishedEarly, "the upload was not under way during the pause")
        let (exit, code) = await upload.wait(timeout: .seconds(90))
        counts.tried += 1
        #expect(exit == 0 && code == "201", "the upload must survive a 5 s registry pause with request_head 2: exit \(exit) status \(code)")
        let pulled = try await files.pull(from: deployment, repository: repository, digest: files.digest)
        counts.tried += 1
        #expect(pulled == files.digest)
        print("registry paused 5 s during an upload (request_head 2): exit \(exit) status \(code)")
        #expect(deployment.gateway.isRunning)
    }

    @Test("a registry answering garbage, closing early, resetting or breaking its framing: 502/503 with an OCI error before any byte went out, a cut connection after; never a 2xx that completes")
    func garbageUpstream() async throws {
        let deployment = try await Self.start()
        defer { deployment.stopAndDiscardStorage() }
        var counts = HardeningTally.Counts()
        defer { Self.tally.record("registry answering garbage", counts, alive: deployment.gateway.isRunning) }
        deployment.stopRegistry()
        let python = try #require(which("python3"))
        let fake = try ServiceProcess(
            python, ["-c", Self.garbageServer, String(deployment.registryPort)], logPath: deployment.directory + "/garbage-registry.log")
        defer { fake.stop() }
        try await waitUntilAnswering("http://127.0.0.1:\(deployment.registryPort)/ready/")

        var failures: [String] = []
        var outcomes: [String] = []
        let credentials = deployment.credentials("alice")
        for round in 0..<2 {
            for mode in Self.headModes + Self.bodyModes {
                // A HEAD answer ends with its head, so only misbehaviours before the end of the head apply to it.
                for method in Self.headModes.contains(mode) ? ["GET", "HEAD", "PUT"] : ["GET", "PUT"] {
                    var arguments = ["-s", "-i", "--max-time", "20", "-u", credentials, "-w", "\n%{http_code}"]
                    let path: String
                    switch method {
                    case "HEAD":
                        arguments += ["-I"]
                        path = "/v2/alice/\(mode)/manifests/v1"
                    case "PUT":
                        arguments += ["-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", #"{"schemaVersion":2}"#]
                        path = "/v2/alice/\(mode)/manifests/v\(round)"
                    default:
                        path = "/v2/alice/\(mode)/tags/list"
                    }
                    let result = try await deployment.curl(arguments, path: path)
                    counts.tried += 1
                    let text = result.standardOutput
                    let code = String(text.split(separator: "\n").last ?? "")
                    let completedSuccess = result.status == 0 && code.hasPrefix("2")
                    outcomes.append("\(method) \(mode): exit \(result.status) \(code)")
                    if !completedSuccess { counts.refused += 1 }
                    if Self.headModes.contains(mode) {
                        // Nothing usable came before the failure: a defined OCI error.
                        let ociError = text.contains(#""errors":[{"#) || method == "HEAD"
                        if !((code == "502" || code == "503") && ociError && result.status == 0) {
                            failures.append("\(method) \(mode): expected 502/503 with an OCI error: exit \(result.status) \(text.prefix(400))")
                        }
                    } else if completedSuccess {
                        failures.append("\(method) \(mode): a broken upstream body ended as a success: \(text.prefix(400))")
                    }
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        await #expect(try Self.healthy(deployment))

        fake.stop()
        try await deployment.restartRegistry()
        var after = ""
        for _ in 0..<20 {
            after = try await Self.status(deployment, "/v2/alice/garbage/tags/list", maxTime: 10)
            if after == "404" { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        counts.tried += 1
        #expect(after == "404", "the real registry again, without restarting Portcullis")
        print("registry answering garbage: \(outcomes.joined(separator: "; "))")
        #expect(deployment.gateway.isRunning)
    }

    /// Misbehaviours before a complete response head: Portcullis has sent nothing yet and must answer with an error.
    static let headModes = [
        "random-bytes", "close-at-once", "reset-at-once", "half-status-line", "half-head", "status-then-close", "bad-status-code",
        "http09-body", "header-1m", "content-length-and-chunked", "two-content-lengths", "negative-content-length",
        "registry-401",
    ]
    /// Misbehaviours after a valid head: the body is short, its chunking broken, or the connection reset mid-body.
    static let bodyModes = ["short-body", "bad-chunk", "reset-mid-body", "chunked-no-end"]

    /// A fake registry: reads a request head, then misbehaves as the path says (`/v2/<account>/<mode>/…`).
    static let garbageServer = #"""
        import os, socket, struct, sys, threading, time
        port = int(sys.argv[1])
        ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDocker-Distribution-Api-Version: registry/2.0\r\n"
        modes = {
            "random-bytes": os.urandom(4096),
            "close-at-once": b"",
            "half-status-line": b"HTTP/1.1 20",
            "half-head": ok + b"Content-Le",
            "status-then-close": b"HTTP/1.1 200 OK\r\n",
            "bad-status-code": b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}",
            "http09-body": b'{"name":"x","tags":["v1"]}\n',
            "header-1m": ok + b"X-Big: " + b"a" * (1 << 20) + b"\r\nContent-Length: 2\r\n\r\n{}",
            "content-length-and-chunked": ok + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "two-content-lengths": ok + b"Content-Length: 2\r\nContent-Length: 20\r\n\r\n{}",
            "negative-content-length": ok + b"Content-Length: -2\r\n\r\n{}",
            "registry-401": b"HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: Bearer realm=\"x\",service=\"registry\",error=\"invalid_token\"\r\nContent-Length: 0\r\n\r\n",
            "short-body": ok + b"Content-Length: 100000\r\n\r\n" + b"{" * 1000,
            "bad-chunk": ok + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nmore\r\n",
            "chunked-no-end": ok + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            "reset-mid-body": ok + b"Content-Length: 100000\r\n\r\n" + b"{" * 1000,
        }

        def serve(conn):
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                line = data.split(b"\r\n", 1)[0].decode("latin-1")
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
                path = line.split(" ")[1] if line.count(" ") >= 2 else "/"
                if path == "/ready/":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                parts = path.split("/")
                mode = parts[3] if len(parts) > 3 else "random-bytes"
                if mode not in modes and mode != "reset-at-once":
                    mode = "random-bytes"
                if mode == "reset-at-once":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                conn.sendall(modes[mode])
                if mode == "reset-mid-body":
                    time.sleep(0.1)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                time.sleep(0.1)
            except OSError:
                pass
            finally:
                conn.close()

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for attempt in range(100):
            try:
                listener.bind(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.1)
        listener.listen(128)
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
        """#
}
