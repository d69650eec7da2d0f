import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// TLS and HTTP/2, metrics, structured logs and audit, hot reload, graceful shutdown, key
/// rotation and the PROXY protocol, against registry 2.8.2 with real clients.
@Suite("production edge")
struct ProductionEdgeTests {
    static let rules = "  - {account: \"*\", name: \"${account}/**\", actions: [\"*\"]}"

    @Test("over TLS, curl --http2 pulls a manifest and a blob with HTTP/2, skopeo pushes trusting the test CA, and a renewed certificate is served without a restart")
    func tlsAndHTTP2() async throws {
        let deployment = try await Deployment.start(users: ["alice": "alice-secret"], rules: Self.rules, tls: true)
        defer { deployment.stop() }
        let certificates = deployment.directory + "/skopeo-certs"
        try FileManager.default.createDirectory(atPath: certificates, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: deployment.directory + "/tls/ca.crt", toPath: certificates + "/ca.crt")

        let (layout, image) = try writeImage(named: "tls", content: "tls")
        let push = try await deployment.skopeo(["copy", "--preserve-digests", "--dest-cert-dir", certificates, "--dest-creds", deployment.credentials("alice"), "oci:\(layout):v1", "docker://\(deployment.host)/alice/tls:v1"])
        #expect(push.succeeded, "\(push)")

        let manifest = try await deployment.curl(["--http2", "-w", "\n%{http_version}", "-u", deployment.credentials("alice"), "-H", "Accept: application/vnd.oci.image.manifest.v1+json"], path: "/v2/alice/tls/manifests/v1")
        #expect(manifest.standardOutput.hasSuffix("\n2"), "not HTTP/2: \(manifest)")
        #expect(manifest.standardOutput.contains(image.configDigest))
        let blob = try await Command("sh", ["-c", "curl -s --http2 --cacert '\(deployment.directory)/tls/ca.crt' -u '\(deployment.credentials("alice"))' '\(deployment.url)/v2/alice/tls/blobs/\(image.layerDigests[0])' | sha256sum"]).runInBackground().checked()
        #expect("sha256:" + blob.standardOutput.prefix(64) == image.layerDigests[0])

        // A new certificate on disk is used for new connections without a restart.
        let before = try TestCertificateAuthority.presentedSerial(port: deployment.gatewayPort)
        #expect(before.hasPrefix("serial="), "\(before)")
        try TestCertificateAuthority.reissueServer(in: deployment.directory + "/tls")
        var after = before
        for _ in 0..<50 where after == before {
            try await Task.sleep(for: .milliseconds(100))
            after = try TestCertificateAuthority.presentedSerial(port: deployment.gatewayPort)
        }
        #expect(after != before && after.hasPrefix("serial="), "the new certificate was not picked up: \(before) → \(after)")
        let again = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "--http2", "-u", deployment.credentials("alice")], path: "/v2/alice/tls/tags/list")
        #expect(again.standardOutput == "200")
    }

    @Test("/metrics reports requests, tokens, authentication failures and upstream figures after traffic; JSON log and audit lines parse and hold no secret")
    func metricsLogsAndAudit() async throws {
        let deployment = try await Deployment.start(users: ["alice": "alice-secret-value"], rules: Self.rules, logFormat: "json")
        defer { deployment.stop() }
        let token = try await deployment.curl(["-u", deployment.credentials("alice")], path: "/token?service=portcullis&scope=repository:alice/m:pull,push")
        let tokenValue = try #require((try JSONSerialization.jsonObject(with: Data(token.standardOutput.utf8)) as? [String: Any])?["token"] as? String)
        _ = try await deployment.curl(["-H", "Authorization: Bearer \(tokenValue)"], path: "/v2/alice/m/tags/list")
        _ = try await deployment.curl(["-u", "alice:wrong-password"], path: "/v2/alice/m/tags/list")
        // Refused in three ways, each with its own path for the request lines below.
        _ = try await deployment.curl([], path: "/v2/alice/anonymous/tags/list")
        _ = try await deployment.curl(["-u", deployment.credentials("alice")], path: "/v2/bob/denied/tags/list")
        _ = try await deployment.curl(["-u", "alice:wrong-password"], path: "/v2/alice/refused/tags/list")
        _ = try await deployment.curl(["-u", deployment.credentials("alice")], path: "/v2/alice/m/tags/list")
        // A blob pushed (monolithic upload) and deleted, for the push and delete audit events.
        let blob = Data("audited blob\n".utf8)
        let blobDigest = "sha256:" + String(try await Command("sha256sum", standardInput: blob).runInBackground().checked().standardOutput.prefix(64))
        let blobFile = deployment.directory + "/audited-blob"
        try blob.write(to: URL(fileURLWithPath: blobFile))
        let upload = try await deployment.curl(["-i", "-X", "POST", "-u", deployment.credentials("alice")], path: "/v2/alice/m/blobs/uploads/")
        let location = try #require(
            upload.standardOutput.split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") }?.dropFirst("location:".count)
                .trimmingCharacters(in: .whitespaces), "\(upload)")
        let put = try await Command("curl", [
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("alice"), "-H", "Content-Type: application/octet-stream",
            "-T", blobFile, location + "&digest=" + blobDigest,
        ]).runInBackground()
        #expect(put.standardOutput == "201", "\(put)")
        let delete = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", "-u", deployment.credentials("alice")], path: "/v2/alice/m/blobs/\(blobDigest)")
        #expect(delete.standardOutput == "202", "\(delete)")

        let metrics = try await deployment.curl([], path: "/metrics").standardOutput
        for expected in [
            #"portcullis_requests_total{route="tags",method="GET",status="404"}"#, #"portcullis_token_requests_total{outcome="complete"}"#,
            #"portcullis_authentication_failures_total{reason="invalidCredentials"}"#, "portcullis_upstream_duration_seconds_bucket",
            #"portcullis_upstream_token_cache_total{result="hit"}"#, "portcullis_open_connections",
            #"portcullis_request_bytes_total{route="upload"}"#, #"portcullis_response_bytes_total{route="tags"}"#,
        ] {
            #expect(metrics.contains(expected), "missing \(expected) in:\n\(metrics)")
        }

        let isRequestLine = { (line: Substring) in line.contains(#""message":"request""#) && line.contains("/v2/alice/m/tags/list") }
        let refusedPaths = ["/v2/alice/anonymous/tags/list", "/v2/bob/denied/tags/list", "/v2/alice/refused/tags/list"]
        let logLines = await deployment.gateway.log(once: { log in
            let lines = log.split(separator: "\n")
            return lines.contains(where: isRequestLine)
                && refusedPaths.allSatisfy { path in lines.contains { $0.contains(#""message":"request""#) && $0.contains(path) } }
        }).split(separator: "\n")
        #expect(logLines.count > 3)
        for line in logLines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] is String && object?["message"] is String, "not a JSON log line: \(line)")
            #expect(!line.contains("alice-secret-value") && !line.contains(tokenValue), "secret in log line: \(line)")
        }
        let requestLine = logLines.first(where: isRequestLine)
        let request = try #require(requestLine.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        for key in ["request", "account", "method", "path", "outcome", "status", "upstream_status", "bytes", "duration_ms"] {
            #expect(request[key] != nil, "request line lacks \(key): \(request)")
        }
        #expect(request["repository"] as? String == "alice/m" && request["action"] as? String == "pull", "\(request)")
        #expect(request["outcome"] as? String == "forwarded", "\(request)")
        // A refused request has its request line too, with the same fields (no upstream status:
        // the registry never saw it).
        let objects = logLines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        for (path, outcome) in [
            ("/v2/alice/anonymous/tags/list", "challenged"), ("/v2/bob/denied/tags/list", "denied"), ("/v2/alice/refused/tags/list", "refused"),
        ] {
            let lines = objects.filter { $0["message"] as? String == "request" && $0["path"] as? String == path }
            #expect(lines.count == 1, "\(path): \(lines.count) request lines")
            let line = lines.first ?? [:]
            #expect((line["outcome"] as? String)?.hasPrefix(outcome) == true && line["status"] as? String == "401", "\(path): \(line)")
            #expect(Int(line["bytes"] as? String ?? "") ?? 0 > 0 && line["duration_ms"] != nil && line["request"] != nil, "\(path): \(line)")
        }

        let auditLog = await text({ deployment.auditLog }, once: { $0.contains(#""delete""#) })
        let auditLines = auditLog.split(separator: "\n")
        let events = auditLines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["event"] as? String }
        #expect(events.count == auditLines.count, "every audit line is JSON with an event")
        #expect(events.contains("token") && events.contains("denied"), "\(events)")
        let changes = auditLines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { ["push_blob", "delete"].contains($0["event"] as? String) }
        #expect(changes.map { $0["event"] as? String } == ["push_blob", "delete"], "\(changes)")
        #expect(changes.allSatisfy { $0["account"] as? String == "alice" && ($0["path"] as? String)?.hasPrefix("/v2/alice/m/blobs/") == true }, "\(changes)")
        #expect(!auditLog.contains("alice-secret-value") && !auditLog.contains(tokenValue))
    }

    /// A 1 GiB monolithic upload through Portcullis with curl, in the background. The body
    /// stops after its first half until ``release()`` is called, so the upload is provably in
    /// flight while the test acts, whatever the machine's speed.
    struct LargeUpload {
        let process: ChildProcess
        let output: PipeReader
        let file: String
        let gate: String

        /// Lets the second half of the body go.
        func release() {
            _ = FileManager.default.createFile(atPath: gate, contents: nil)
        }

        /// Waits for curl and returns the HTTP status it saw.
        func finish() async -> String {
            release()
            await process.exited()
            return String(decoding: await output.contents(), as: UTF8.self)
        }
    }

    /// Bytes the registry holds in unfinished uploads of `repository`.
    func uploadedBytes(_ deployment: Deployment, repository: String) -> Int {
        let uploads = deployment.storage + "/repositories/\(repository)/_uploads"
        let sessions = (try? FileManager.default.contentsOfDirectory(atPath: uploads)) ?? []
        return sessions.reduce(0) { total, session in
            let size = (try? FileManager.default.attributesOfItem(atPath: "\(uploads)/\(session)/data"))?[.size] as? Int ?? 0
            return total + size
        }
    }

    /// Waits (at most 30 s) until body bytes of an upload to `repository` have reached the
    /// registry's upload area: the request is in flight.
    func waitUntilInFlight(_ deployment: Deployment, repository: String) async throws {
        for _ in 0..<600 where uploadedBytes(deployment, repository: repository) == 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The gated uploads below pause their body while the test works, and the second half of a
    /// 1 GiB body can take long on a loaded machine: neither the 60 s stalled-body bound nor the
    /// 30 s shutdown grace period is what these tests are about.
    static let patientBodies = "timeouts:\n  request_head: 600\nshutdown:\n  grace_period: 600"

    func startLargeUpload(_ deployment: Deployment, repository: String) async throws -> LargeUpload {
        let file = deployment.directory + "/large-\(UUID().uuidString.prefix(6))"
        let gate = file + ".go"
        _ = try await Command("sh", ["-c", "head -c 1073741824 /dev/urandom > '\(file)'"], timeout: .seconds(120)).runInBackground().checked()
        let digest = "sha256:" + String(try await Command("sha256sum", [file], timeout: .seconds(120)).runInBackground().checked().standardOutput.prefix(64))
        let start = try await deployment.curl(["-i", "-X", "POST", "-u", deployment.credentials("alice")], path: "/v2/\(repository)/blobs/uploads/")
        let locationLine = start.standardOutput.split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") }
        let location = String(locationLine?.dropFirst("location:".count) ?? "").trimmingCharacters(in: .whitespaces)
        let half = 536_870_912
        let feeder = "{ head -c \(half) '\(file)'; while [ ! -e '\(gate)' ]; do sleep 0.05; done; tail -c +\(half + 1) '\(file)'; }"
        let upload = "curl -s -o /dev/null -w '%{http_code}' -u '\(deployment.credentials("alice"))' -H 'Content-Type: application/octet-stream' -T - '\(location)&digest=\(digest)'"
        let pipe = try ChildProcess.pipe()
        defer { close(pipe.write) }
        let process = try ChildProcess("/bin/sh", ["-c", "\(feeder) | \(upload)"], environment: ProcessInfo.processInfo.environment, standardOutput: pipe.write)
        return LargeUpload(process: process, output: PipeReader(FileHandle(fileDescriptor: pipe.read, closeOnDealloc: false)), file: file, gate: gate)
    }

    @Test("a new rule applies without restart while a 1 GiB upload is in flight, a broken change is refused and logged, and the upload completes")
    func hotReloadDuringUpload() async throws {
        let deployment = try await Deployment.start(users: ["alice": "alice-secret", "bob": "bob-secret"], rules: Self.rules, extraConfiguration: Self.patientBodies)
        defer { deployment.stop() }
        let upload = try await startLargeUpload(deployment, repository: "alice/reload")
        defer {
            upload.release()
            try? FileManager.default.removeItem(atPath: upload.file)
        }
        try await waitUntilInFlight(deployment, repository: "alice/reload")
        #expect(uploadedBytes(deployment, repository: "alice/reload") > 0, "the upload is not in flight")
        let before = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("bob")], path: "/v2/alice/reload/tags/list")
        #expect(before.standardOutput == "401")

        let original = try String(contentsOfFile: deployment.configurationPath, encoding: .utf8)
        try Data(original.replacingOccurrences(of: "rules:\n", with: "rules:\n  - {account: bob, name: \"alice/**\", actions: [pull]}\n").utf8)
            .write(to: URL(fileURLWithPath: deployment.configurationPath))
        var after = ""
        for _ in 0..<50 {
            after = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("bob")], path: "/v2/alice/reload/tags/list").standardOutput
            if after != "401" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(after == "404", "the new rule did not apply: \(after)")
        #expect(upload.process.isRunning, "the upload cannot finish before its gate opens")

        try Data((original + "\nnot: [valid").utf8).write(to: URL(fileURLWithPath: deployment.configurationPath))
        for _ in 0..<50 where !deployment.gateway.log.contains("configuration change refused") {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(deployment.gateway.log.contains("level=error") && deployment.gateway.log.contains("configuration change refused"))
        let stillAllowed = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("bob")], path: "/v2/alice/reload/tags/list")
        #expect(stillAllowed.standardOutput == "404", "the previous configuration must stay in force")

        let status = await upload.finish()
        #expect(status == "201", "the upload did not complete: \(status)")
    }

    @Test("SIGTERM during a 1 GiB upload: readiness turns false, the upload completes, then Portcullis exits 0")
    func gracefulShutdownDuringUpload() async throws {
        let deployment = try await Deployment.start(users: ["alice": "alice-secret"], rules: Self.rules, extraConfiguration: Self.patientBodies)
        defer { deployment.stop() }
        let upload = try await startLargeUpload(deployment, repository: "alice/drain")
        defer {
            upload.release()
            try? FileManager.default.removeItem(atPath: upload.file)
        }
        try await waitUntilInFlight(deployment, repository: "alice/drain")
        #expect(uploadedBytes(deployment, repository: "alice/drain") > 0)
        #expect(upload.process.isRunning, "the upload cannot finish before its gate opens")
        kill(deployment.gateway.pid, SIGTERM)
        var readiness = ""
        for _ in 0..<30 {
            readiness = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}"], path: "/readyz").standardOutput
            if readiness != "200" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(readiness != "200", "still ready while draining")
        let status = await upload.finish()
        #expect(status == "201", "the upload did not complete: \(status)")
        for _ in 0..<100 where deployment.gateway.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!deployment.gateway.isRunning)
        #expect(deployment.gateway.terminationStatus == 0)
    }

    @Test("SIGTERM with an upload that outlasts shutdown.grace_period: Portcullis exits once the period is over, the client never sees a success, and the cut is logged as such")
    func gracePeriodRunsOut() async throws {
        let deployment = try await Deployment.start(
            users: ["alice": "alice-secret"], rules: Self.rules, extraConfiguration: "timeouts:\n  request_head: 600\nshutdown:\n  grace_period: 2")
        defer { deployment.stop() }
        let upload = try await startLargeUpload(deployment, repository: "alice/cut")
        defer {
            upload.release()
            try? FileManager.default.removeItem(atPath: upload.file)
        }
        try await waitUntilInFlight(deployment, repository: "alice/cut")
        #expect(upload.process.isRunning, "the upload cannot finish before its gate opens")
        let signalled = ContinuousClock.now
        kill(deployment.gateway.pid, SIGTERM)
        for _ in 0..<900 where deployment.gateway.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        let took = ContinuousClock.now - signalled
        print("grace period ran out: Portcullis exited \(took) after SIGTERM (grace_period 2 s)")
        #expect(!deployment.gateway.isRunning)
        // The upload's body is gated and never ends by itself: any exit is the grace period's doing.
        // The bound is loose (a loaded CI machine), like terminationGracePeriodSeconds over grace_period.
        #expect(took < .seconds(30), "Portcullis took \(took) to exit with a 2 s grace period")
        let status = await upload.finish()
        #expect(!status.hasPrefix("2"), "an upload cut by the shutdown reported \(status)")
        #expect(deployment.gateway.log.contains("request cut by shutdown"), "\(deployment.gateway.log)")
        #expect(!deployment.gateway.log.contains("registry unreachable"))
    }

    @Test("key rotation: with the registry trusting both keys, Portcullis switches keys and no request fails, old client tokens included")
    func keyRotation() async throws {
        let deployment = try await Deployment.start(users: ["alice": "alice-secret"], rules: Self.rules)
        defer { deployment.stop() }
        let bundle = try String(contentsOfFile: deployment.directory + "/keys/token.crt", encoding: .utf8)
            + String(contentsOfFile: deployment.directory + "/otherkeys/token.crt", encoding: .utf8)
        try Data(bundle.utf8).write(to: URL(fileURLWithPath: deployment.directory + "/registry/trust/rootcertbundle.pem"))
        try await deployment.rewireRegistry(trustingOtherKey: false)

        let token = try await deployment.curl(["-u", deployment.credentials("alice")], path: "/token?service=portcullis&scope=repository:alice/rotate:pull")
        let oldToken = try #require((try JSONSerialization.jsonObject(with: Data(token.standardOutput.utf8)) as? [String: Any])?["token"] as? String)
        var statuses: [String] = []
        func probe() async throws {
            statuses.append(try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("alice")], path: "/v2/alice/rotate/tags/list").standardOutput)
            statuses.append(try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: Bearer \(oldToken)"], path: "/v2/alice/rotate/tags/list").standardOutput)
        }
        try await probe()
        let configuration = try String(contentsOfFile: deployment.configurationPath, encoding: .utf8)
            .replacingOccurrences(of: "key: keys/token.key", with: "key: otherkeys/token.key")
            .replacingOccurrences(of: "certificate: keys/token.crt", with: "certificate: otherkeys/token.crt")
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: deployment.configurationPath))
        for _ in 0..<40 where !deployment.gateway.log.contains("signing key rotated") {
            try await probe()
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(deployment.gateway.log.contains("signing key rotated"))
        for _ in 0..<5 { try await probe() }
        #expect(statuses.allSatisfy { $0 == "404" }, "some request failed during the rotation: \(statuses)")
    }

    @Test("token.next_key is announced before it signs: /jwks lists both keys and registry-config's bundle trusts both; token.jwks_path moves /jwks")
    func nextKeyAnnounced() async throws {
        let deployment = try await Deployment.start(users: ["alice": "alice-secret"], rules: Self.rules)
        defer { deployment.stop() }
        let configuration = try String(contentsOfFile: deployment.configurationPath, encoding: .utf8)
            .replacingOccurrences(of: "  certificate: keys/token.crt\n", with: "  certificate: keys/token.crt\n  next_key: otherkeys/token.key\n  next_certificate: otherkeys/token.crt\n")
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: deployment.configurationPath))
        var keys: [[String: Any]] = []
        for _ in 0..<50 {
            let jwks = try await deployment.curl([], path: "/jwks").standardOutput
            keys = ((try? JSONSerialization.jsonObject(with: Data(jwks.utf8)) as? [String: Any])?["keys"] as? [[String: Any]]) ?? []
            if keys.count == 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(keys.count == 2, "\(keys)")
        #expect(keys.allSatisfy { $0["kty"] as? String == "EC" && $0["kid"] is String })
        // token.jwks_path moves the document (applied by the next reload).
        let moved = try String(contentsOfFile: deployment.configurationPath, encoding: .utf8)
            .replacingOccurrences(of: "  next_key: otherkeys/token.key\n", with: "  next_key: otherkeys/token.key\n  jwks_path: /.well-known/jwks.json\n")
        try Data(moved.utf8).write(to: URL(fileURLWithPath: deployment.configurationPath))
        var movedStatus = ""
        for _ in 0..<50 where movedStatus != "200" {
            try await Task.sleep(for: .milliseconds(100))
            movedStatus = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}"], path: "/.well-known/jwks.json").standardOutput
        }
        #expect(movedStatus == "200")
        #expect(try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}"], path: "/jwks").standardOutput == "404")
        let out = deployment.directory + "/next-trust"
        _ = try await Command(try portcullisBinary(), ["registry-config", "--config", deployment.configurationPath, "--out", out]).runInBackground().checked()
        let bundle = try String(contentsOfFile: out + "/rootcertbundle.pem", encoding: .utf8)
        #expect(bundle.components(separatedBy: "BEGIN CERTIFICATE").count - 1 == 2)
        // Signing is unchanged: the registry, which trusts only the current key, still accepts Portcullis.
        let status = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("alice")], path: "/v2/alice/next/tags/list")
        #expect(status.standardOutput == "404")
    }

    @Test("behind a PROXY protocol sender (v1 and v2) the audit line shows the original client address; a spoofed X-Forwarded-For is ignored")
    func proxyProtocol() async throws {
        let deployment = try await Deployment.start(users: ["alice": "alice-secret"], rules: Self.rules, extraConfiguration: "listen_proxy_protocol: true")
        defer { deployment.stop() }
        let script = """
            import socket, struct, sys
            port = int(sys.argv[1])
            request = b"GET /token?service=portcullis HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Basic YWxpY2U6d3Jvbmc=\\r\\nX-Forwarded-For: 6.6.6.6\\r\\nConnection: close\\r\\n\\r\\n"
            v1 = b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\\r\\n"
            sig = b"\\r\\n\\r\\n\\x00\\r\\nQUIT\\n"
            v2 = sig + bytes([0x21, 0x11]) + struct.pack("!H", 12) + bytes([198, 51, 100, 9]) + bytes([127, 0, 0, 1]) + struct.pack("!HH", 40001, 443)
            for header in (v1, v2, b""):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(header + request)
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk: break
                    data += chunk
                print(data.split(b"\\r\\n")[0].decode() if data else "closed")
                s.close()
            """
        let result = try await Command("python3", ["-c", script, String(deployment.gatewayPort)]).runInBackground().checked()
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines.first?.hasPrefix("HTTP/1.1 401") == true, "\(lines)")
        #expect(lines.dropFirst().first?.hasPrefix("HTTP/1.1 401") == true, "\(lines)")
        #expect(lines.last == "closed", "a connection without a PROXY header must be closed: \(lines)")
        let audit = await text({ deployment.auditLog }, once: { $0.contains(#""peer":"203.0.113.7""#) && $0.contains(#""peer":"198.51.100.9""#) })
        #expect(audit.contains(#""peer":"203.0.113.7""#), "\(audit)")
        #expect(audit.contains(#""peer":"198.51.100.9""#), "\(audit)")
        #expect(!audit.contains("6.6.6.6"), "a spoofed X-Forwarded-For reached the audit log")
    }

    @Test("trusted_proxies: a trusted peer's X-Forwarded-For and Forwarded name the client in the audit line; the same headers from another peer are ignored")
    func trustedProxies() async throws {
        let deployment = try await Deployment.start(users: ["alice": "alice-secret"], rules: Self.rules, extraConfiguration: "trusted_proxies: [127.0.0.1/32]")
        defer { deployment.stop() }
        let wrong = ["-o", "/dev/null", "-u", "alice:wrong"]
        // From 127.0.0.1, the trusted balancer.
        _ = try await deployment.curl(wrong + ["-H", "X-Forwarded-For: 198.51.100.1, 203.0.113.20"], path: "/token?service=portcullis")
        _ = try await deployment.curl(wrong + ["-H", "Forwarded: for=203.0.113.21;proto=https"], path: "/token?service=portcullis")
        // From 127.0.0.2, a peer that is not a proxy (loopback answers on all of 127/8).
        _ = try await deployment.curl(wrong + ["--interface", "127.0.0.2", "-H", "X-Forwarded-For: 203.0.113.66"], path: "/token?service=portcullis")
        let auditedPeers = { (audit: String) in
            audit.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["peer"] as? String }
        }
        let peers = auditedPeers(await text({ deployment.auditLog }, once: { auditedPeers($0).count >= 3 }))
        #expect(peers == ["203.0.113.20", "203.0.113.21", "127.0.0.2"], "\(peers)")
    }

    @Test("h2c: true on a plain listener serves HTTP/2 with prior knowledge and HTTP/1.1 side by side, a blob download included")
    func h2cPriorKnowledge() async throws {
        let deployment = try await Deployment.start(users: ["alice": "alice-secret"], rules: Self.rules, extraConfiguration: "h2c: true")
        defer { deployment.stop() }
        let files = try await BlobFiles.make(randomMiB: 1, zeroMiB: 0)
        defer { files.remove() }
        #expect(try await files.push(files.path, digest: files.digest, to: deployment, repository: "alice/h2c") == "201")
        let format = ["-o", "/dev/null", "-w", "%{http_code} %{http_version} %{size_download}", "-u", deployment.credentials("alice")]
        let http2 = try await deployment.curl(["--http2-prior-knowledge"] + format, path: "/v2/alice/h2c/blobs/\(files.digest)")
        #expect(http2.standardOutput == "200 2 \(1 << 20)", "\(http2)")
        let challenge = try await deployment.curl(["--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code} %{http_version}"], path: "/v2/alice/h2c/tags/list")
        #expect(challenge.standardOutput == "401 2", "\(challenge)")
        let http1 = try await deployment.curl(["--http1.1"] + format, path: "/v2/alice/h2c/blobs/\(files.digest)")
        #expect(http1.standardOutput == "200 1.1 \(1 << 20)", "\(http1)")
        // A request that merely starts like the preface is HTTP/1.1 (and refused as such).
        let lookalike = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-X", "PRI"], path: "/")
        #expect(["400", "404", "405"].contains(lookalike.standardOutput), "\(lookalike)")
        #expect(deployment.gateway.isRunning)
    }

    @Test("admin_listen serves /healthz, /readyz and /metrics on a port of its own and nothing else; the main port is unchanged")
    func adminListener() async throws {
        let adminPort = try freeLoopbackPort()
        let deployment = try await Deployment.start(users: ["alice": "alice-secret"], rules: Self.rules, extraConfiguration: "admin_listen: 127.0.0.1:\(adminPort)")
        defer { deployment.stop() }
        let admin = "http://127.0.0.1:\(adminPort)"
        func status(_ url: String) async throws -> String {
            try await Command("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", url]).runInBackground().standardOutput
        }
        var ready = ""
        for _ in 0..<40 {
            ready = try await status(admin + "/readyz")
            if ready == "200" { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(ready == "200")
        #expect(try await status(admin + "/healthz") == "200")
        let metrics = try await Command("curl", ["-s", "--max-time", "10", admin + "/metrics"]).runInBackground().standardOutput
        #expect(metrics.contains("portcullis_open_connections"), "\(metrics.prefix(300))")
        #expect(try await status(admin + "/v2/") == "404")
        #expect(try await status(admin + "/token?service=portcullis") == "404")
        #expect(try await status(deployment.url + "/v2/") == "401")
    }

    @Test("SIGHUP re-reads the configuration even when no file changed, and a new rule applies at once")
    func sighupReloads() async throws {
        let deployment = try await Deployment.start(users: ["alice": "alice-secret", "bob": "bob-secret"], rules: Self.rules)
        defer { deployment.stop() }
        let before = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("bob")], path: "/v2/alice/shared/tags/list")
        #expect(before.standardOutput == "401")
        // Widen the rule in place, keeping the file's size, inode and modification time, so that
        // only the signal can tell it changed.
        let path = deployment.configurationPath
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        let configuration = try String(contentsOfFile: path, encoding: .utf8)
        let widened = configuration.replacingOccurrences(of: #"name: "${account}/**""#, with: #"name: "**"           "#)
        #expect(widened != configuration && widened.utf8.count == configuration.utf8.count)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: Data(widened.utf8))
        try handle.close()
        try FileManager.default.setAttributes([.modificationDate: attributes[.modificationDate]!], ofItemAtPath: path)
        kill(deployment.gateway.pid, SIGHUP)
        var logged = false
        for _ in 0..<40 where !logged {
            try await Task.sleep(for: .milliseconds(100))
            logged = deployment.gateway.log.split(separator: "\n").contains { $0.contains(#"msg="configuration reloaded""#) && $0.contains("reason=SIGHUP") }
        }
        #expect(logged, "\(deployment.gateway.log)")
        let after = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("bob")], path: "/v2/alice/shared/tags/list")
        #expect(after.standardOutput == "404", "the new rule did not apply: \(after)")
    }
}
