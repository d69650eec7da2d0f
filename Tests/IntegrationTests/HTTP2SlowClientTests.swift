import Foundation
import Testing
import TestSupport

/// Slow and idle clients on the TLS listener, HTTP/2 included: the TLS handshake, an HTTP/2
/// connection without streams, and a stream whose request body stalls are each bounded by
/// `timeouts.request_head`, while other clients are served.
@Suite("HTTP/2 and TLS slow clients")
struct HTTP2SlowClientTests {
    static let headTimeout = 2.0
    /// `timeouts.response_stall`: longer than the pauses between a rate-limited client's window updates.
    static let stallTimeout = 8.0

    @Test("a silent TLS connection, an HTTP/2 connection with no stream (quiet or sending PINGs), a stalled HTTP/2 request body and a client that stops reading are cut within timeouts.request_head (response_stall for the reader) plus slack; slow but flowing downloads and other clients are served")
    func slowHTTP2Clients() async throws {
        let deployment = try await Deployment.start(
            users: [HostileHTTPTests.alice.0: HostileHTTPTests.alice.1], rules: HostileHTTPTests.rules,
            extraConfiguration: "timeouts:\n  request_head: \(Int(Self.headTimeout))\n  response_stall: \(Int(Self.stallTimeout))", tls: true)
        defer { deployment.stop() }
        var counts = HardeningTally.Counts()
        defer { HostileHTTPTests.tally.record("HTTP/2 and TLS slow clients", counts, alive: deployment.gateway.isRunning) }

        let port = deployment.gatewayPort
        let probe = Task {
            try await Command(
                "python3", ["-c", HTTP2Frames.python + Self.script, String(port), HostileHTTPTests.basic, String(Self.headTimeout + 10)], timeout: .seconds(120)
            ).runInBackground().checked()
        }
        var servedMeanwhile = 0
        for _ in 0..<4 {
            try await Task.sleep(for: .milliseconds(500))
            let health = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code} %{http_version}", "--http2", "--max-time", "5"], path: "/healthz")
            if health.standardOutput == "200 2" { servedMeanwhile += 1 }
        }
        let output = try await probe.value.standardOutput
        struct Outcome: Decodable {
            var name: String
            var seconds: Double
            var closed: Bool
            var events: [String]
        }
        let outcomes = try output.split(separator: "\n").map { try JSONDecoder().decode(Outcome.self, from: Data($0.utf8)) }
        print("HTTP/2 slow clients: " + outcomes.map { "\($0.name)=\($0.closed ? "cut" : "open") after \($0.seconds) s \($0.events)" }.joined(separator: " "))
        counts.tried += outcomes.count + 4
        #expect(Set(outcomes.map(\.name)) == ["silent-tls", "h2-no-stream", "h2-pings-only", "h2-stalled-body"])
        var failures: [String] = []
        for outcome in outcomes {
            // The stalled stream may be reset on its own (RST_STREAM) with the connection left
            // idle, which the idle bound then closes: both count, within the same bound.
            let cut = outcome.closed || outcome.events.contains("RST_STREAM 1")
            if cut && outcome.seconds <= Self.headTimeout + 10 {
                counts.refused += 1
            } else {
                failures.append("\(outcome.name): \(outcome.closed ? "closed" : "still open") after \(outcome.seconds) s, \(outcome.events)")
            }
            if outcome.events.contains(where: { $0.hasPrefix("HEADERS 1") && $0.contains(":status 2") }) {
                failures.append("\(outcome.name): a stalled request was answered with a 2xx")
            }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")

        // A blob to read slowly, and for the stalled reader below.
        let files = try await BlobFiles.make(randomMiB: 0, zeroMiB: 12)
        defer { files.remove() }
        let tls = ["--cacert", deployment.directory + "/tls/ca.crt"]
        let start = try await deployment.curl(["--http1.1", "-i", "-X", "POST", "-u", deployment.credentials("alice")], path: "/v2/alice/h2-slow/blobs/uploads/")
        let location = try #require(
            start.standardOutput.split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") }?.dropFirst("location:".count)
                .trimmingCharacters(in: .whitespaces), "\(start)")
        let put = try await Command("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}"] + tls + [
            "-u", deployment.credentials("alice"), "-H", "Content-Type: application/octet-stream", "-T", files.zeroPath,
            location + "&digest=" + files.zeroDigest,
        ]).runInBackground()
        #expect(put.standardOutput == "201", "\(put)")
        // A stream that keeps flowing is never cut, however long it takes: 12 MiB read at 2 MiB/s
        // outlasts timeouts.request_head three times, and the handler has long finished when the
        // client reads the tail (a stream closed then would be reset, CANCEL, with data unsent).
        // Three at once, since whether data is still queued when the handler returns is a race.
        let slowDownloads = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    try await Command("curl", ["-s", "--max-time", "60"] + tls + [
                        "--http2", "--limit-rate", "2M", "-o", "/dev/null", "-w", "%{http_code} %{http_version} %{size_download}",
                        "-u", deployment.credentials("alice"), deployment.url + "/v2/alice/h2-slow/blobs/\(files.zeroDigest)",
                    ], timeout: .seconds(90)).runInBackground().standardOutput
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        counts.tried += slowDownloads.count
        print("HTTP/2 slow downloads: \(slowDownloads)")
        #expect(slowDownloads == Array(repeating: "200 2 \(files.zeroSize)", count: 3), "a slow HTTP/2 download was cut: \(slowDownloads)")

        // A client that stops reading a response is cut once it has taken nothing for timeouts.response_stall
        // (the proxy holds an upstream connection for it): it never gets the whole blob.
        let stalledReader = try await Command("python3", ["-c", Self.stalledReader, String(port), HostileHTTPTests.basic, "/v2/alice/h2-slow/blobs/\(files.zeroDigest)", String(Self.stallTimeout + 4)], timeout: .seconds(60)).runInBackground().checked()
        counts.tried += 1
        print("stalled reader: \(stalledReader.standardOutput)")
        let (received, ended) = (Int(stalledReader.standardOutput.split(separator: " ")[0]) ?? -1, stalledReader.standardOutput.contains("eof"))
        if ended && received < files.zeroSize { counts.refused += 1 }
        #expect(ended && received >= 0 && received < files.zeroSize, "a client that stopped reading was not cut: \(stalledReader.standardOutput)")

        #expect(servedMeanwhile == 4, "HTTP/2 clients were not served while slow ones held connections (\(servedMeanwhile)/4)")
        #expect(deployment.gateway.isRunning)
    }

    /// HTTP/1.1 over TLS: asks for a blob, reads nothing for a while, then drains what is left
    /// in the socket buffers; prints the bytes received and `eof` when the server had closed.
    static let stalledReader = #"""
        import socket, ssl, sys, time
        port, authorization, path, pause = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["http/1.1"])
        raw = socket.create_connection(("127.0.0.1", port))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n" % (path, authorization)).encode())
        time.sleep(pause)
        sock.settimeout(3)
        received, state = 0, "open"
        try:
            while True:
                data = sock.recv(1 << 20)
                if not data:
                    state = "eof"
                    break
                received += len(data)
        except (ConnectionError, ssl.SSLError):
            state = "eof"
        except socket.timeout:
            state = "open"
        print(received, state)
        """#

    /// One thread per case (after ``HTTP2Frames/python``); each prints a JSON line: how long until the server closed the
    /// connection (or the case gave up), and the frames it saw.
    static let script = #"""
        import json, select, socket, ssl, struct, sys, threading, time
        port, authorization, give_up = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
        lock = threading.Lock()

        def run(name, setup):
            started = time.monotonic()
            events, closed = [], False
            sock = socket.create_connection(("127.0.0.1", port), timeout=give_up)
            try:
                if name == "silent-tls":
                    sock.settimeout(give_up)
                    closed = sock.recv(1) == b""
                else:
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                    context.set_alpn_protocols(["h2"])
                    sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
                    if sock.selected_alpn_protocol() != "h2":
                        events.append("ALPN " + str(sock.selected_alpn_protocol()))
                    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
                    setup(sock)
                    buffer, last_ping = b"", time.monotonic()
                    while time.monotonic() - started < give_up:
                        if name == "h2-pings-only" and time.monotonic() - last_ping > 0.5:
                            sock.sendall(frame(6, 0, 0, b"pingpong"))
                            last_ping = time.monotonic()
                        ready, _, _ = select.select([sock], [], [], 0.25)
                        if not ready and not sock.pending():
                            continue
                        try:
                            data = sock.recv(65536)
                        except (ConnectionError, ssl.SSLError):
                            data = b""
                        if not data:
                            closed = True
                            break
                        buffer += data
                        while len(buffer) >= 9:
                            length = int.from_bytes(buffer[:3], "big")
                            if len(buffer) < 9 + length:
                                break
                            kind, flags, stream = buffer[3], buffer[4], int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
                            payload = buffer[9:9 + length]
                            buffer = buffer[9 + length:]
                            if kind == 4 and not flags & 1:
                                sock.sendall(frame(4, 1, 0))
                            elif kind == 1:
                                events.append("HEADERS %d :status %s" % (stream, status_of(payload)))
                            elif kind == 3:
                                events.append("RST_STREAM %d" % stream)
                                if name == "h2-stalled-body" and stream == 1:
                                    # Reset is the bound for the stream; the connection is now idle.
                                    pass
                            elif kind == 7:
                                events.append("GOAWAY")
            except (ConnectionError, ssl.SSLError, socket.timeout) as error:
                closed = not isinstance(error, socket.timeout)
                events.append(type(error).__name__)
            finally:
                sock.close()
            with lock:
                print(json.dumps({"name": name, "seconds": round(time.monotonic() - started, 2), "closed": closed, "events": events}))
                sys.stdout.flush()

        def stalled_body(sock):
            headers = [(":method", "POST"), (":scheme", "https"), (":path", "/v2/alice/h2-stalled/blobs/uploads/"),
                       (":authority", "127.0.0.1:%d" % port), ("authorization", authorization),
                       ("content-type", "application/octet-stream"), ("content-length", "100000")]
            sock.sendall(frame(1, 4, 1, hpack(headers)) + frame(0, 0, 1, b"0123456789"))

        cases = [("silent-tls", None), ("h2-no-stream", lambda s: None), ("h2-pings-only", lambda s: None),
                 ("h2-stalled-body", stalled_body)]
        threads = [threading.Thread(target=run, args=case) for case in cases]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        """#
}
