import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM with HTTP/2 clients connected, over h2c and over TLS (ALPN h2): every connection is
/// told GOAWAY, an idle one is closed at once, a stream in flight completes, and Portcullis
/// exits as soon as it has, long before `shutdown.grace_period`.
@Suite("HTTP/2 graceful shutdown")
struct HTTP2GracefulShutdownTests {
    /// Far beyond what the test waits: a shutdown that waited it out would fail the client first.
    static let gracePeriod = 300

    struct Report: Decodable {
        struct Connection: Decodable {
            var events: [String]
            var goAway: Int?
            var closed: Bool
            var received: Int
            var ended: Bool
        }
        var idle: Connection
        var busy: Connection
        /// Whether the idle connection was closed while the busy one's stream was still held back.
        var idleClosedFirst: Bool
    }

    @Test("SIGTERM over h2c: GOAWAY on an idle and a busy connection, the idle one closed at once, the stream in flight completes, then Portcullis exits 0")
    func h2c() async throws {
        try await Self.shutDown(tls: false)
    }

    @Test("SIGTERM over TLS with ALPN h2: GOAWAY on an idle and a busy connection, the idle one closed at once, the stream in flight completes, then Portcullis exits 0")
    func tls() async throws {
        try await Self.shutDown(tls: true)
    }

    static func shutDown(tls: Bool) async throws {
        let deployment = try await Deployment.start(
            users: [HostileHTTPTests.alice.0: HostileHTTPTests.alice.1], rules: HostileHTTPTests.rules,
            extraConfiguration: (tls ? "" : "h2c: true\n") + "shutdown:\n  grace_period: \(gracePeriod)", tls: tls)
        defer { deployment.stop() }
        let files = try await BlobFiles.make(randomMiB: 2, zeroMiB: 0)
        defer { files.remove() }
        let size = 2 << 20
        #expect(try await files.push(files.path, digest: files.digest, to: deployment, repository: "alice/drain-h2") == "201")

        let result = try await Command(
            "python3",
            [
                "-c", HTTP2Frames.python + script, String(deployment.gatewayPort), tls ? "1" : "0", HostileHTTPTests.basic,
                "/v2/alice/drain-h2/blobs/\(files.digest)", String(deployment.gateway.pid), "120",
            ],
            timeout: .seconds(180)
        ).runInBackground().checked()
        print("HTTP/2 shutdown (\(tls ? "TLS" : "h2c")): \(result.standardOutput)")
        let report = try JSONDecoder().decode(Report.self, from: result.standardOutputData)

        // The idle connection: GOAWAY naming its one stream, then closed, while the other
        // connection's stream was still in flight (so not by the end of the grace period).
        #expect(report.idle.goAway == 1, "\(report.idle.events)")
        #expect(report.idle.closed, "\(report.idle.events)")
        #expect(report.idleClosedFirst, "the idle connection stayed open while a stream was in flight: \(report.idle.events)")
        #expect(Self.index(of: "GOAWAY", in: report.idle.events) ?? .max < Self.index(of: "closed", in: report.idle.events) ?? -1)

        // The busy connection: GOAWAY while its stream was held back, the whole blob, then the close.
        #expect(report.busy.goAway == 1, "\(report.busy.events)")
        #expect(report.busy.received == size, "\(report.busy.received) of \(size) bytes: \(report.busy.events)")
        #expect(report.busy.ended, "\(report.busy.events)")
        #expect(report.busy.closed, "\(report.busy.events)")
        let goAway = Self.index(of: "GOAWAY", in: report.busy.events) ?? .max
        let end = Self.index(of: "END 1", in: report.busy.events) ?? -1
        let closed = Self.index(of: "closed", in: report.busy.events) ?? -1
        #expect(goAway < end && end < closed, "\(report.busy.events)")

        let exit = await deployment.gateway.exited(timeout: .seconds(60))
        #expect(exit == 0, "Portcullis did not exit 0 once the stream had completed (\(String(describing: exit)))")
        #expect(deployment.gateway.log.contains("all connections drained"))
        #expect(!deployment.gateway.log.contains("request cut by shutdown"), "\(deployment.gateway.log)")
    }

    static func index(of prefix: String, in events: [String]) -> Int? {
        events.firstIndex { $0.hasPrefix(prefix) }
    }

    /// Two HTTP/2 connections: `idle` gets /healthz and stays; `busy` asks for a blob and holds
    /// its flow-control window shut after the first 64 KiB. Then SIGTERM; the script waits for
    /// the idle connection to close before it opens the busy one's window, then reads the rest.
    /// Prints one JSON report.
    static let script = #"""
        import json, os, select, signal, socket, ssl, sys, time
        port, tls, authorization, path, pid, give_up = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
        started = time.monotonic()

        class Connection:
            def __init__(self):
                sock = socket.create_connection(("127.0.0.1", port), timeout=give_up)
                if tls:
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                    context.set_alpn_protocols(["h2"])
                    sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
                    assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()
                self.sock, self.buffer, self.events = sock, b"", []
                self.go_away, self.closed, self.received, self.ended = None, False, 0, False
                sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))

            def note(self, text):
                self.events.append("%s @%.2fs" % (text, time.monotonic() - started))

            def get(self, path, authorization=None):
                headers = [(":method", "GET"), (":scheme", "https" if tls else "http"), (":path", path), (":authority", "127.0.0.1:%d" % port)]
                if authorization:
                    headers.append(("authorization", authorization))
                self.sock.sendall(frame(1, 0x5, 1, hpack(headers)))

            def pump(self, wait):
                """Reads what has come within `wait` seconds and handles its frames."""
                if self.closed:
                    return
                if not (tls and self.sock.pending()):
                    ready, _, _ = select.select([self.sock], [], [], max(wait, 0))
                    if not ready:
                        return
                try:
                    data = self.sock.recv(1 << 16)
                except (ConnectionError, ssl.SSLError) as error:
                    self.note(type(error).__name__)
                    data = b""
                if not data:
                    self.closed = True
                    self.note("closed")
                    return
                self.buffer += data
                while len(self.buffer) >= 9:
                    length = int.from_bytes(self.buffer[:3], "big")
                    if len(self.buffer) < 9 + length:
                        break
                    kind, flags, stream = self.buffer[3], self.buffer[4], int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
                    payload = self.buffer[9:9 + length]
                    self.buffer = self.buffer[9 + length:]
                    if kind == 4 and not flags & 1:
                        self.sock.sendall(frame(4, 1, 0))
                    elif kind == 6 and not flags & 1:
                        self.sock.sendall(frame(6, 1, 0, payload))
                    elif kind == 1:
                        self.note("HEADERS %d :status %s" % (stream, status_of(payload)))
                    elif kind == 0:
                        self.received += length - (1 + payload[0] if flags & 0x8 else 0)
                    elif kind == 3:
                        self.note("RST_STREAM %d" % stream)
                    elif kind == 7:
                        self.go_away = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                        self.note("GOAWAY last_stream_id=%d error=%d" % (self.go_away, int.from_bytes(payload[4:8], "big")))
                    if kind in (0, 1) and flags & 0x1:
                        self.ended = True
                        self.note("END %d" % stream)

            def until(self, condition, others=()):
                deadline = time.monotonic() + give_up
                while not condition() and not self.closed and time.monotonic() < deadline:
                    self.pump(0.05)
                    for other in others:
                        other.pump(0)
                return condition()

            def report(self):
                return {"events": self.events, "goAway": self.go_away, "closed": self.closed, "received": self.received, "ended": self.ended}

        idle = Connection()
        idle.get("/healthz")
        idle.until(lambda: idle.ended)
        busy = Connection()
        busy.get(path, authorization)
        # The default windows (65,535 bytes) are never opened: the stream stops there, unfinished.
        busy.until(lambda: busy.received >= 65535)
        busy.note("held at %d bytes" % busy.received)
        os.kill(pid, signal.SIGTERM)
        idle.note("SIGTERM")
        busy.note("SIGTERM")
        idle.until(lambda: idle.closed, others=[busy])
        idle_closed_first = idle.closed and not busy.ended
        busy.until(lambda: busy.go_away is not None)
        busy.note("window opened")
        busy.sock.sendall(frame(8, 0, 0, (1 << 30).to_bytes(4, "big")) + frame(8, 0, 1, (1 << 30).to_bytes(4, "big")))
        busy.until(lambda: busy.closed)
        print(json.dumps({"idle": idle.report(), "busy": busy.report(), "idleClosedFirst": idle_closed_first}))
        """#
}
