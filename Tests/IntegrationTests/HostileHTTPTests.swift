import Foundation
import Synchronization
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

// Hostile HTTP at Portcullis's listener (issue 9): request smuggling, oversized heads, slowloris
// and idle connections, abrupt client disconnects during uploads and downloads, and a randomized
// raw-request mutator (`make fuzz` runs it long). The requests are written byte for byte by a
// python3 client (standard library only), so nothing normalises them on the way.
//
// Every test reports its counts to the suite's tally, which prints one summary line when the
// last test of the suite has finished: requests tried, refused (an error status or a closed
// connection), crashes (Portcullis no longer running).

@Suite("hostile HTTP at the listener")
struct HostileHTTPTests {
    static let tally = HardeningTally(suite: "hostile HTTP", tests: 7)
    static let alice = ("alice", "alice-secret")
    static let rules = #"  - {account: "*", name: "${account}/**", actions: [pull, push, delete]}"#
    /// Seconds a connection may take to deliver a request head (`timeouts.request_head`).
    static let headTimeout = 2.0
    /// Portcullis with a short request-head timeout; mutated credentials are failed logins, so the
    /// throttle is set not to lock alice (or 127.0.0.1) out.
    static func startHostileTarget() async throws -> Deployment {
        try await Deployment.start(
            users: [alice.0: alice.1], rules: rules,
            extraConfiguration: "timeouts:\n  request_head: \(Int(headTimeout))\nthrottling:\n  max_failures: 10000\n  max_failures_per_address: 1000000\n  window: 1")
    }
    /// Shared by the tests that only send requests.
    static let shared = Task { try await startHostileTarget() }

    static var basic: String { "Basic " + Data("\(alice.0):\(alice.1)".utf8).base64EncodedString() }

    // MARK: Smuggling

    /// A request on the same connection that Portcullis must never see as a request of its own.
    static func smuggled(_ name: String) -> String {
        "GET /v2/alice/smuggled-\(name)/tags/list HTTP/1.1\r\nHost: x\r\nAuthorization: \(basic)\r\n\r\n"
    }

    /// Requests whose framing is ambiguous or invalid, each followed by a smuggled request hidden
    /// where some reading of the framing would find a second request.
    static func smugglingCases() -> [RawCase] {
        let post = "POST /v2/alice/app/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nAuthorization: \(basic)\r\n"
        func chunkedThenSmuggled(_ name: String) -> String { "0\r\n\r\n" + smuggled(name) }
        let cases: [(String, String)] = [
            ("cl-te", post + "Content-Length: \(chunkedThenSmuggled("cl-te").utf8.count)\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedThenSmuggled("cl-te")),
            ("te-cl", post + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunkedThenSmuggled("te-cl")),
            ("cl-zero-te", post + "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedThenSmuggled("cl-zero-te")),
            ("duplicate-cl", post + "Content-Length: 0\r\nContent-Length: \(smuggled("duplicate-cl").utf8.count)\r\n\r\n" + smuggled("duplicate-cl")),
            ("duplicate-cl-equal", post + "Content-Length: 0\r\nContent-Length: 0\r\n\r\n" + smuggled("duplicate-cl-equal")),
            ("cl-list", post + "Content-Length: 0, \(smuggled("cl-list").utf8.count)\r\n\r\n" + smuggled("cl-list")),
            ("cl-plus", post + "Content-Length: +0\r\n\r\n" + smuggled("cl-plus")),
            ("cl-negative", post + "Content-Length: -1\r\n\r\n" + smuggled("cl-negative")),
            ("cl-hex", post + "Content-Length: 0x0\r\n\r\n" + smuggled("cl-hex")),
            ("cl-inner-space", post + "Content-Length: 0 \(smuggled("cl-inner-space").utf8.count)\r\n\r\n" + smuggled("cl-inner-space")),
            ("cl-overflow", post + "Content-Length: 18446744073709551616\r\n\r\n" + smuggled("cl-overflow")),
            ("te-chunked-identity", post + "Transfer-Encoding: chunked, identity\r\n\r\n" + chunkedThenSmuggled("te-chunked-identity")),
            ("te-identity-chunked", post + "Transfer-Encoding: identity, chunked\r\n\r\n" + chunkedThenSmuggled("te-identity-chunked")),
            ("te-gzip-chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n" + chunkedThenSmuggled("te-gzip-chunked")),
            ("te-chunked-chunked", post + "Transfer-Encoding: chunked, chunked\r\n\r\n" + chunkedThenSmuggled("te-chunked-chunked")),
            ("te-identity", post + "Transfer-Encoding: identity\r\n\r\n" + smuggled("te-identity")),
            ("te-xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n" + chunkedThenSmuggled("te-xchunked")),
            ("te-two-lines", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" + chunkedThenSmuggled("te-two-lines")),
            ("te-two-lines-identity-first", post + "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedThenSmuggled("te-two-lines-identity-first")),
            ("te-space-before-colon", post + "Transfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n" + chunkedThenSmuggled("te-space-before-colon")),
            ("te-tab", post + "Transfer-Encoding:\tchunked\r\nContent-Length: 3\r\n\r\n" + chunkedThenSmuggled("te-tab")),
            ("te-vertical-tab", post + "Transfer-Encoding: \u{0B}chunked\r\n\r\n" + chunkedThenSmuggled("te-vertical-tab")),
            ("te-obs-fold", post + "Transfer-Encoding: identity\r\n chunked\r\nContent-Length: 3\r\n\r\n" + chunkedThenSmuggled("te-obs-fold")),
            ("cl-obs-fold", post + "Content-Length: 0\r\n \(smuggled("cl-obs-fold").utf8.count)\r\n\r\n" + smuggled("cl-obs-fold")),
            ("obs-fold-other-header", "GET /v2/alice/app/tags/list HTTP/1.1\r\nHost: x\r\nAuthorization: \(basic)\r\nX-Folded: a\r\n b\r\n\r\n" + smuggled("obs-fold-other-header")),
            ("te-http10", "POST /v2/alice/app/blobs/uploads/ HTTP/1.0\r\nHost: x\r\nAuthorization: \(basic)\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedThenSmuggled("te-http10")),
            ("chunk-size-overflow", post + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n" + smuggled("chunk-size-overflow")),
            ("chunk-size-negative", post + "Transfer-Encoding: chunked\r\n\r\n-1\r\n" + smuggled("chunk-size-negative")),
            ("chunk-extension-bare-lf", post + "Transfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n" + smuggled("chunk-extension-bare-lf")),
            ("chunk-bare-lf", post + "Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n" + smuggled("chunk-bare-lf")),
            ("bare-lf-head", ("GET /v2/alice/app/tags/list HTTP/1.1\nHost: x\nAuthorization: \(basic)\nContent-Length: 0\n\n" + smuggled("bare-lf-head"))),
            ("bare-cr-head", "GET /v2/alice/app/tags/list HTTP/1.1\rHost: x\r\nAuthorization: \(basic)\r\n\r\n" + smuggled("bare-cr-head")),
            ("cr-in-header-value", "GET /v2/alice/app/tags/list HTTP/1.1\r\nHost: x\r\nAuthorization: \(basic)\r\nX-A: a\rContent-Length: 10\r\n\r\n" + smuggled("cr-in-header-value")),
            ("nul-in-header-value", "GET /v2/alice/app/tags/list HTTP/1.1\r\nHost: x\r\nAuthorization: \(basic)\r\nX-A: a\u{0}b\r\n\r\n" + smuggled("nul-in-header-value")),
            ("space-in-header-name", "GET /v2/alice/app/tags/list HTTP/1.1\r\nHost: x\r\nAuthorization: \(basic)\r\nContent Length: 10\r\n\r\n" + smuggled("space-in-header-name")),
            ("missing-host", "GET /v2/alice/app/tags/list HTTP/1.1\r\nAuthorization: \(basic)\r\n\r\n" + smuggled("missing-host")),
            ("two-hosts", "GET /v2/alice/app/tags/list HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nAuthorization: \(basic)\r\n\r\n" + smuggled("two-hosts")),
            ("http2-preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + smuggled("http2-preface")),
            ("http09-request-line", "GET /v2/\r\n\r\n" + smuggled("http09-request-line")),
            ("http-version-2", "GET /v2/ HTTP/2.0\r\nHost: x\r\n\r\n" + smuggled("http-version-2")),
            ("http-version-1-2", "GET /v2/ HTTP/1.2\r\nHost: x\r\n\r\n" + smuggled("http-version-1-2")),
            ("control-byte-in-method", "G\u{1}T /v2/ HTTP/1.1\r\nHost: x\r\n\r\n" + smuggled("control-byte-in-method")),
            ("space-in-target", "GET /v2/alice/app /tags/list HTTP/1.1\r\nHost: x\r\n\r\n" + smuggled("space-in-target")),
        ]
        return cases.map { RawCase(name: $0.0, bytes: Data($0.1.utf8), readTimeout: 4) }
    }

    /// Requests that get their answer before the rest of their body turns out malformed: exactly
    /// one answer, then a closed connection (a second, unsolicited response would desynchronise a
    /// client or load balancer, and trips an assertion in NIO's pipeline handler). The client sends
    /// the malformed rest only once the answer's head has arrived, whatever the machine's speed
    /// (a fixed pause let a busy machine see the malformed rest first and answer 400 instead).
    static func answeredThenMalformed() -> [RawCase] {
        let upload = "POST /v2/alice/app/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        let wrongPassword = "Basic " + Data("alice:wrong".utf8).base64EncodedString()
        let token = "GET /token?service=portcullis HTTP/1.1\r\nHost: x\r\nAuthorization: \(wrongPassword)\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        let health = "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        var cases: [RawCase] = []
        for (name, head) in [("upload", upload), ("token", token), ("healthz", health)] {
            for (variant, rest) in [
                ("bad-chunk-size", "zz\r\n"), ("bad-chunk-end", "3\r\nabcXY"), ("bad-trailer", "0\r\nX-Trailer: a\rb\r\n\r\n"),
            ] {
                cases.append(RawCase(
                    name: "answered-\(name)-\(variant)", bytes: Data((head + rest).utf8), readTimeout: 30, pauseAfter: head.utf8.count,
                    awaitAnswer: true))
            }
        }
        return cases
    }

    @Test("smuggling attempts (CL+TE, duplicate or odd Content-Length, Transfer-Encoding variants, obs-fold, bare CR/LF, Host games) get 400/501 and a closed connection; the hidden request never reaches the registry")
    func smuggling() async throws {
        let deployment = try await Self.shared.value
        var counts = HardeningTally.Counts()
        defer { Self.tally.record("smuggling", counts, alive: deployment.gateway.isRunning) }
        // A legitimate pipelined pair shows that the oracle sees a request that does reach the registry.
        let control = RawCase(
            name: "pipelined-control",
            bytes: Data(("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + "GET /v2/alice/pipelined-control/tags/list HTTP/1.1\r\nHost: x\r\nAuthorization: \(Self.basic)\r\nConnection: close\r\n\r\n").utf8),
            readTimeout: 4)
        let cases = Self.smugglingCases()
        let answered = Self.answeredThenMalformed()
        let outcomes = try await RawExchange.run(cases + answered + [control], port: deployment.gatewayPort)
        counts.tried += cases.count + answered.count + 1
        var failures: [String] = []
        for attack in cases {
            let outcome = try #require(outcomes[attack.name])
            let finals = outcome.statuses.filter { $0 >= 200 }
            if outcome.refused(allowing: [400, 501]) { counts.refused += 1 } else { failures.append("\(attack.name): \(outcome)") }
            if finals.count > 1 { failures.append("\(attack.name): answered more than one request: \(outcome)") }
        }
        for malformed in answered {
            let outcome = try #require(outcomes[malformed.name])
            let expected = malformed.name.contains("-healthz-") ? 200 : 401
            if outcome.closed && !outcome.unparsed && outcome.statuses.filter({ $0 >= 200 }) == [expected] {
                counts.refused += 1
            } else {
                failures.append("\(malformed.name): expected exactly one \(expected) answer, then a close: \(outcome)")
            }
        }
        let controlOutcome = try #require(outcomes[control.name])
        #expect(controlOutcome.statuses == [200, 404], "a legitimate pipelined pair: \(controlOutcome)")
        try await Task.sleep(for: .milliseconds(300))
        let registryLog = deployment.registryLog
        let forwarded = cases.map(\.name).filter { registryLog.contains("/v2/alice/smuggled-\($0)/") }
        let served = cases.map(\.name).filter { deployment.gateway.log.contains("smuggled-\($0)/") }
        #expect(registryLog.contains("/v2/alice/pipelined-control/tags/list"), "the control request never reached the registry: the oracle is blind")
        print("smuggling: \(cases.count + answered.count) attacks; outcomes: " + (cases + answered).map { "\($0.name)=\(outcomes[$0.name]?.summary ?? "?")" }.joined(separator: " "))
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(forwarded.isEmpty, "smuggled requests reached the registry: \(forwarded)")
        #expect(served.isEmpty, "Portcullis served smuggled requests: \(served)")
        #expect(deployment.gateway.log.contains("malformed HTTP request refused"), "no warning line for the refused requests")
        #expect(deployment.gateway.isRunning)
    }

    @Test("a malformed request pipelined behind a download the client does not read yet: the whole download, at most one 400, then a close, however slowly the download goes; Portcullis survives")
    func malformedBehindUnreadDownload() async throws {
        let deployment = try await Self.shared.value
        var counts = HardeningTally.Counts()
        defer { Self.tally.record("malformed behind a download", counts, alive: deployment.gateway.isRunning) }
        let files = try await BlobFiles.make(randomMiB: 16, zeroMiB: 0)
        defer { files.remove() }
        #expect(try await files.push(files.path, digest: files.digest, to: deployment, repository: "alice/pipelined") == "201")
        // The download's end is written while its bytes still wait in the socket buffers; then the
        // second request's head reaches a handler while its broken body makes the parser fail. The
        // refusal and the handler's own answer must not both go out (in a debug build NIO's
        // pipeline handler asserts; in a release build the client gets an unsolicited response).
        let download = "GET /v2/alice/pipelined/blobs/\(files.digest) HTTP/1.1\r\nHost: x\r\nAuthorization: \(Self.basic)\r\n\r\n"
        var cases: [RawCase] = []
        for (name, second) in [
            ("unauthenticated-upload", "POST /v2/alice/app/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"),
            ("token-form", "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ngrant\r\nzz\r\n"),
            ("healthz", "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabcXY"),
        ] {
            for index in 0..<2 {
                // Six 16 MiB downloads take as long as the machine is busy: the read waits as long
                // as bytes keep coming, and only 60 s without a byte or a close (a stall) ends it.
                cases.append(RawCase(
                    name: "\(name)-\(index)", bytes: Data((download + second).utf8), readTimeout: 60, untilQuiet: true, readDelay: 1.5,
                    receiveBuffer: 32 * 1024))
            }
        }
        let outcomes = try await RawExchange.run(cases, port: deployment.gatewayPort)
        counts.tried += cases.count * 2
        var failures: [String] = []
        for pipelined in cases {
            let outcome = try #require(outcomes[pipelined.name])
            let finals = outcome.statuses.filter { $0 >= 200 }
            let wholeDownload = finals.first == 200 && outcome.lengths.first == files.size && outcome.hasWholeBody(0)
            if outcome.closed && !outcome.unparsed && wholeDownload && finals.count <= 2 && finals.dropFirst().allSatisfy({ $0 == 400 }) {
                counts.refused += 1
            } else if !outcome.closed {
                failures.append("\(pipelined.name): a stall, neither more bytes nor a close for \(Int(pipelined.readTimeout)) s: \(outcome)")
            } else {
                failures.append("\(pipelined.name): expected the whole download, at most one 400, then a close: \(outcome)")
            }
        }
        print("malformed behind an unread download: " + cases.map { "\($0.name)=\(outcomes[$0.name]?.progress ?? "?")" }.joined(separator: " "))
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}"], path: "/healthz").standardOutput == "200")
        #expect(deployment.gateway.isRunning)
    }

    // MARK: Oversized heads

    @Test("oversized headers, many headers and huge URLs get 431/414/400 or a closed connection; long-but-legal targets get a defined 4xx")
    func oversized() async throws {
        let deployment = try await Self.shared.value
        var counts = HardeningTally.Counts()
        defer { Self.tally.record("oversized heads", counts, alive: deployment.gateway.isRunning) }
        let auth = "Authorization: \(Self.basic)\r\n"
        let huge: [(String, String)] = [
            ("header-100k", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 100_000) + "\r\n\r\n"),
            ("header-1m", "GET /v2/alice/app/tags/list HTTP/1.1\r\nHost: x\r\n\(auth)X-Big: " + String(repeating: "b", count: 1 << 20) + "\r\n\r\n"),
            ("header-name-100k", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + String(repeating: "N", count: 100_000) + ": v\r\n\r\n"),
            ("20000-headers", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + (0..<20_000).map { "X-H\($0): v\r\n" }.joined() + "\r\n"),
            ("url-100k", "GET /v2/alice/" + String(repeating: "a", count: 100_000) + "/tags/list HTTP/1.1\r\nHost: x\r\n\(auth)\r\n"),
            ("url-1m", "GET /v2/alice/app/tags/list?x=" + String(repeating: "q", count: 1 << 20) + " HTTP/1.1\r\nHost: x\r\n\(auth)\r\n"),
            ("method-100k", String(repeating: "G", count: 100_000) + " / HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("authorization-200k", "GET /v2/alice/app/tags/list HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + String(repeating: "Q", count: 200_000) + "\r\n\r\n"),
        ]
        let legal: [(String, String)] = [
            ("url-8k-name", "GET /v2/alice/" + String(repeating: "a", count: 8000) + "/tags/list HTTP/1.1\r\nHost: x\r\n\(auth)Connection: close\r\n\r\n"),
            ("url-8k-query", "GET /v2/alice/app/tags/list?n=1&x=" + String(repeating: "a", count: 8000) + " HTTP/1.1\r\nHost: x\r\n\(auth)Connection: close\r\n\r\n"),
            ("header-16k", "GET /v2/alice/app/tags/list HTTP/1.1\r\nHost: x\r\n\(auth)X-Big: " + String(repeating: "c", count: 16_000) + "\r\nConnection: close\r\n\r\n"),
            ("200-headers", "GET /v2/alice/app/tags/list HTTP/1.1\r\nHost: x\r\n\(auth)" + (0..<200).map { "X-H\($0): v\r\n" }.joined() + "Connection: close\r\n\r\n"),
        ]
        let cases = (huge + legal).map { RawCase(name: $0.0, bytes: Data($0.1.utf8), readTimeout: 5) }
        let outcomes = try await RawExchange.run(cases, port: deployment.gatewayPort)
        counts.tried += cases.count
        var failures: [String] = []
        for (name, _) in huge {
            let outcome = try #require(outcomes[name])
            if outcome.refused(allowing: [400, 414, 431]) { counts.refused += 1 } else { failures.append("\(name): \(outcome)") }
        }
        for (name, _) in legal {
            let outcome = try #require(outcomes[name])
            // A defined answer: the name is invalid (400/404) or the repository unknown (404), never a 5xx or silence.
            if let status = outcome.statuses.last, (400..<500).contains(status), outcome.closed {
                counts.refused += 1
            } else {
                failures.append("\(name): expected a 4xx and a close: \(outcome)")
            }
        }
        print("oversized heads: " + cases.map { "\($0.name)=\(outcomes[$0.name]?.summary ?? "?")" }.joined(separator: " "))
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        let health = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}"], path: "/healthz")
        #expect(health.standardOutput == "200", "\(health)")
        #expect(deployment.gateway.isRunning)
    }

    // MARK: Slow and idle clients

    @Test("slowloris (headers trickled byte by byte), idle, half-sent and stalled-body connections are closed within timeouts.request_head plus slack while others are served")
    func slowAndIdleConnections() async throws {
        let deployment = try await Self.shared.value
        var counts = HardeningTally.Counts()
        defer { Self.tally.record("slow and idle clients", counts, alive: deployment.gateway.isRunning) }
        let slowHead = "GET /v2/alice/app/tags/list HTTP/1.1\r\nHost: x\r\nAuthorization: \(Self.basic)\r\nX-Slow: " + String(repeating: "s", count: 400)
        var cases: [RawCase] = []
        for index in 0..<16 {
            cases.append(RawCase(name: "slowloris-\(index)", bytes: Data(slowHead.utf8), trickle: 0.2, trickleLimit: 30, readTimeout: 30))
        }
        for index in 0..<8 { cases.append(RawCase(name: "idle-\(index)", bytes: Data(), readTimeout: 30)) }
        for index in 0..<4 {
            cases.append(RawCase(name: "keep-alive-idle-\(index)", bytes: Data("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8), readTimeout: 30))
        }
        cases.append(RawCase(name: "half-request-line", bytes: Data("GET /v2/alice/app/ta".utf8), readTimeout: 30))
        cases.append(RawCase(name: "head-without-blank-line", bytes: Data("GET /healthz HTTP/1.1\r\nHost: x\r\n".utf8), readTimeout: 30))
        // A complete head announcing a body that never comes: the token endpoint reads it itself,
        // an upload streams it to the registry.
        cases.append(RawCase(
            name: "stalled-token-body",
            bytes: Data("POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=pass".utf8),
            readTimeout: 30))
        cases.append(RawCase(
            name: "stalled-upload-body",
            bytes: Data("POST /v2/alice/stalled/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nAuthorization: \(Self.basic)\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n0123456789".utf8),
            readTimeout: 30))

        let port = deployment.gatewayPort
        let slow = Task { try await RawExchange.run(cases, port: port, parallel: cases.count) }
        // Meanwhile, everyone else is served.
        var servedMeanwhile = 0
        for _ in 0..<6 {
            try await Task.sleep(for: .milliseconds(400))
            let health = try await Command("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", deployment.url + "/healthz"]).runInBackground()
            let tags = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "-u", "alice:alice-secret"], path: "/v2/alice/app/tags/list")
            if health.standardOutput == "200" && tags.standardOutput == "404" { servedMeanwhile += 1 }
        }
        let outcomes = try await slow.value
        counts.tried += cases.count + 12
        // Generous: the head timeout, the time the test machine may need to schedule everyone, no lower bound.
        let bound = Self.headTimeout + 10
        var failures: [String] = []
        for slowCase in cases {
            let outcome = try #require(outcomes[slowCase.name])
            let successful = outcome.statuses.contains { (200..<300).contains($0) }
            let expectSuccess = slowCase.name.hasPrefix("keep-alive-idle")
            if outcome.closed && outcome.seconds <= bound && successful == expectSuccess {
                counts.refused += 1
            } else {
                failures.append("\(slowCase.name): \(outcome)")
            }
        }
        print("slow and idle: closed within \(bound) s: " + cases.map { "\($0.name)=\(outcomes[$0.name]?.summary ?? "?")" }.joined(separator: " "))
        #expect(servedMeanwhile == 6, "other clients were not served while slow clients held connections (\(servedMeanwhile)/6)")
        #expect(failures.isEmpty, "not closed within \(bound) s:\n\(failures.joined(separator: "\n"))")
        #expect(deployment.gateway.isRunning)
    }

    // MARK: Abrupt disconnects

    @Test("clients that reset the connection as soon as they have the declared bytes lose no request line and log no failure")
    func clientsClosingAtTheDeclaredLength() async throws {
        let deployment = try await Self.shared.value
        let (layout, image) = try writeImage(named: "closing", content: "closing clients")
        defer { try? FileManager.default.removeItem(atPath: layout) }
        let push = try await deployment.push(layout, credentials: deployment.credentials("alice"), to: "alice/closing:v1")
        #expect(push.succeeded, "\(push)")
        let failuresBefore = deployment.gateway.log.components(separatedBy: "request failed").count - 1
        // Tags of a digest: answered by Portcullis itself, the request line written after the answer.
        let script = """
            import base64, socket, struct, sys, threading
            port, auth, target = int(sys.argv[1]), base64.b64encode(sys.argv[2].encode()).decode(), sys.argv[3]
            statuses, lock = [], threading.Lock()
            def worker():
                for _ in range(40):
                    s = socket.create_connection(("127.0.0.1", port))
                    s.sendall(f"GET {target} HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Basic {auth}\\r\\n\\r\\n".encode())
                    data = b""
                    while b"\\r\\n\\r\\n" not in data:
                        chunk = s.recv(65536)
                        if not chunk: break
                        data += chunk
                    head, _, body = data.partition(b"\\r\\n\\r\\n")
                    length = next((int(l.split(b":")[1]) for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length:")), 0)
                    while len(body) < length:
                        chunk = s.recv(65536)
                        if not chunk: break
                        body += chunk
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, at once
                    s.close()
                    with lock: statuses.append(head.split(b" ")[1].decode() if head else "none")
            threads = [threading.Thread(target=worker) for _ in range(8)]
            [t.start() for t in threads]; [t.join() for t in threads]
            print(" ".join(sorted(set(statuses))), len(statuses))
            """
        let target = "/v2/alice/closing/tags/list?digest=\(image.manifestDigest)"
        let run = try await Command("python3", ["-c", script, String(deployment.gatewayPort), deployment.credentials("alice"), target], timeout: .seconds(120))
            .runInBackground().checked()
        #expect(run.standardOutput == "200 320\n", "\(run)")
        let isAnswered = { (line: Substring) in line.contains("path=/v2/alice/closing/tags/list") && line.contains("status=200") }
        let log = await deployment.gateway.log(once: { $0.split(separator: "\n").filter(isAnswered).count >= 320 })
        #expect(log.split(separator: "\n").filter(isAnswered).count == 320, "request lines lost")
        let failures = log.components(separatedBy: "request failed").count - 1 - failuresBefore
        #expect(failures == 0, "\(failures) requests logged as failed: \(log.split(separator: "\n").filter { $0.contains("request failed") }.prefix(3))")
    }

    @Test("clients killed mid-upload and mid-download: others keep being served, and open descriptors and resident memory return to baseline")
    func abruptDisconnects() async throws {
        let deployment = try await Deployment.start(users: [Self.alice.0: Self.alice.1], rules: Self.rules)
        defer { deployment.stopAndDiscardStorage() }
        var counts = HardeningTally.Counts()
        defer { Self.tally.record("abrupt disconnects", counts, alive: deployment.gateway.isRunning) }
        let pid = deployment.gateway.pid
        let credentials = deployment.credentials("alice")
        // The pulled blob is larger than every socket buffer between registry and client
        // together, so killed downloads are cut while Portcullis still streams from the registry.
        let files = try await BlobFiles.make(randomMiB: 8, zeroMiB: 160)
        defer { files.remove() }
        let repository = "alice/disconnect"

        // Warm up with complete transfers of the same kind, so pools and allocator arenas are grown.
        #expect(try await files.push(files.zeroPath, digest: files.zeroDigest, to: deployment, repository: repository) == "201")
        #expect(try await files.push(files.path, digest: files.digest, to: deployment, repository: repository) == "201")
        let blobURL = deployment.url + "/v2/\(repository)/blobs/\(files.zeroDigest)"
        var warmups: [BackgroundProcess] = []
        for _ in 0..<3 { warmups.append(try BackgroundProcess.curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", credentials, blobURL])) }
        for warmup in warmups { #expect(await warmup.wait().output == "200") }
        try await Task.sleep(for: .seconds(1))
        let baseline = try ProcessFigures.sample(pid)

        // Six uploads and six downloads at once, each killed (SIGKILL) once it is under way.
        var uploads: [(BackgroundProcess, String)] = []
        var downloads: [(BackgroundProcess, String)] = []
        for index in 0..<6 {
            let location = try await files.startUpload(to: deployment, repository: repository)
            uploads.append((try BackgroundProcess.curl([
                "-s", "-o", "/dev/null", "-u", credentials, "-H", "Content-Type: application/octet-stream", "--limit-rate", "4M",
                "-T", files.zeroPath, location + "&digest=" + files.zeroDigest,
            ]), files.uploadData(deployment, repository: repository, location: location)))
            let output = files.path + ".part\(index)"
            downloads.append((try BackgroundProcess.curl(["-s", "-o", output, "-u", credentials, "--limit-rate", "4M", blobURL]), output))
        }
        defer { for (_, output) in downloads { try? FileManager.default.removeItem(atPath: output) } }
        let (underWay, during, finishedEarly) = try await onOwnThread { [uploads, downloads] in
            let underWay = (uploads + downloads).filter { fileReaches($0.1, atLeast: 1 << 20) }.count
            let during = try ProcessFigures.sample(pid)
            let finishedEarly = (uploads + downloads).filter { $0.0.completed }.count
            for (victim, _) in uploads + downloads { victim.kill() }
            return (underWay, during, finishedEarly)
        }
        counts.tried += uploads.count + downloads.count
        counts.refused += uploads.count + downloads.count
        #expect(underWay == 12, "only \(underWay) of 12 transfers got under way before being killed")
        #expect(finishedEarly == 0, "\(finishedEarly) transfers finished before they were killed")

        // Others are served right away.
        let health = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}"], path: "/healthz")
        let pulled = try await files.pull(from: deployment, repository: repository, digest: files.digest)
        counts.tried += 2
        #expect(health.standardOutput == "200", "\(health)")
        #expect(pulled == files.digest, "a complete download after the disconnects")

        let settled = await ProcessFigures.settle(pid, descriptors: baseline.descriptors + 4, residentKiB: baseline.residentKiB + 32 * 1024)
        print(
            "abrupt disconnects: baseline \(baseline), with 12 transfers in flight \(during), after killing them \(settled.figures) "
                + "(limits: descriptors ≤ baseline + 4, resident ≤ baseline + 32 MiB)")
        #expect(during.descriptors >= baseline.descriptors + 12, "the transfers were not in flight when killed: \(during) vs \(baseline)")
        #expect(settled.withinLimits, "descriptors or memory did not return to baseline: baseline \(baseline), after \(settled.figures)")
        #expect(deployment.gateway.log.contains("request aborted by client"), "no upload was seen aborting")
        #expect(deployment.gateway.isRunning)
    }

    // MARK: Randomized mutations

    @Test("randomized raw-request mutations (CI: 300; make fuzz: PORTCULLIS_FUZZ_REQUESTS): every answer is well-formed, no 500, Portcullis survives and leaks no descriptors")
    func randomMutations() async throws {
        // Its own Portcullis: the descriptor count must not see the other tests' connections.
        let deployment = try await Self.startHostileTarget()
        defer { deployment.stopAndDiscardStorage() }
        var counts = HardeningTally.Counts()
        defer { Self.tally.record("mutations", counts, alive: deployment.gateway.isRunning) }
        let environment = ProcessInfo.processInfo.environment
        let requests = environment["PORTCULLIS_FUZZ_REQUESTS"].flatMap { Int($0) } ?? 300
        let seed = environment["PORTCULLIS_FUZZ_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64(UInt32.max))
        let before = try ProcessFigures.sample(deployment.gateway.pid)
        let report = try await RequestMutator.run(
            port: deployment.gatewayPort, credentials: "alice:alice-secret", repository: "alice/fuzz", seed: seed, requests: requests,
            workers: 8, readTimeout: Self.headTimeout + 8)
        counts.tried += report.tried
        counts.refused += report.refused
        // Idle connections close within the head timeout; then the descriptors are back.
        let settled = await ProcessFigures.settle(deployment.gateway.pid, descriptors: before.descriptors + 6, residentKiB: before.residentKiB + 64 * 1024)
        print("mutations: \(report.summary); descriptors \(before.descriptors) before, \(settled.figures.descriptors) after; resident \(before.residentKiB) KiB before, \(settled.figures.residentKiB) KiB after")
        for sample in report.samples.prefix(20) { print("  notable: \(sample)") }
        #expect(report.serverErrors == 0, "500 answers to mutated requests (reproduce with PORTCULLIS_FUZZ_SEED=\(seed)): \(report.samples.prefix(5))")
        #expect(report.malformedAnswers == 0, "answers that are no HTTP/1.1 response: \(report.samples.prefix(5))")
        #expect(report.healthFailures == 0, "/healthz failed \(report.healthFailures) times during the run")
        #expect(report.timedOut == 0, "connections left open without an answer for longer than request_head + 8 s: \(report.samples.filter { $0.hasPrefix("left open") }.prefix(5))")
        #expect(settled.withinLimits, "descriptors or memory did not return after the run: before \(before), after \(settled.figures)")
        #expect(deployment.gateway.isRunning, "Portcullis died (seed \(seed))")
    }
}

// MARK: - Shared helpers (also used by UpstreamFaultTests)

/// Counts of one suite; prints a line per test and the suite's summary once all its tests reported.
final class HardeningTally: Sendable {
    struct Counts: Sendable {
        /// Requests sent (connections opened, for connection-level cases).
        var tried = 0
        /// Requests answered with an error status or a closed connection.
        var refused = 0
    }

    private struct State {
        var counts = Counts()
        var finished = 0
        var crashes = 0
    }

    let suite: String
    let tests: Int
    private let state = Mutex(State())

    init(suite: String, tests: Int) {
        self.suite = suite
        self.tests = tests
    }

    /// Adds one test's counts; `alive` is whether Portcullis still ran at its end.
    func record(_ test: String, _ counts: Counts, alive: Bool) {
        let total = state.withLock { state -> State? in
            state.counts.tried += counts.tried
            state.counts.refused += counts.refused
            state.finished += 1
            if !alive { state.crashes += 1 }
            return state.finished == tests ? state : nil
        }
        print("\(suite) / \(test): requests tried: \(counts.tried), refused: \(counts.refused), crashes: \(alive ? 0 : 1)")
        if let total {
            print("\(suite) summary: requests tried: \(total.counts.tried), refused: \(total.counts.refused), crashes: \(total.crashes)")
        }
    }
}

extension Deployment {
    /// Stops both processes and deletes the registry's storage (these tests push blobs of
    /// hundreds of MiB); keys, configuration and logs stay for a look after a failure.
    func stopAndDiscardStorage() {
        stop()
        try? FileManager.default.removeItem(atPath: directory + "/registry/data")
    }
}

/// Descriptor count and resident memory of a process, from /proc.
struct ProcessFigures: Sendable, CustomStringConvertible {
    var descriptors: Int
    var residentKiB: Int

    var description: String { "\(descriptors) fds, \(residentKiB / 1024) MiB resident" }

    static func sample(_ pid: Int32) throws -> ProcessFigures {
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { throw HarnessError("no VmRSS in /proc/\(pid)/status") }
        return ProcessFigures(descriptors: descriptors, residentKiB: kib)
    }

    /// Polls (up to `timeout`) until the process has at most `descriptors` open and `residentKiB` resident.
    static func settle(_ pid: Int32, descriptors: Int, residentKiB: Int, timeout: Duration = .seconds(10)) async -> (figures: ProcessFigures, withinLimits: Bool) {
        let deadline = ContinuousClock.now + timeout
        var last = ProcessFigures(descriptors: .max, residentKiB: .max)
        while true {
            if let figures = try? sample(pid) { last = figures }
            if last.descriptors <= descriptors && last.residentKiB <= residentKiB { return (last, true) }
            if ContinuousClock.now >= deadline { return (last, false) }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}

/// A program running in the background (curl mostly), killed or waited for.
final class BackgroundProcess: @unchecked Sendable {
    private let child: ChildProcess
    private let output: PipeReader

    init(_ executable: String, _ arguments: [String]) throws {
        guard let path = which(executable) else { throw HarnessError("\(executable) is not installed") }
        let pipe = try ChildProcess.pipe()
        defer { close(pipe.write) }
        do {
            child = try ChildProcess(path, arguments, environment: ProcessInfo.processInfo.environment, standardOutput: pipe.write)
        } catch {
            close(pipe.read)
            throw error
        }
        output = PipeReader(FileHandle(fileDescriptor: pipe.read, closeOnDealloc: false))
    }

    static func curl(_ arguments: [String]) throws -> BackgroundProcess { try BackgroundProcess("curl", arguments) }

    var isRunning: Bool { child.isRunning }

    /// Whether it ended on its own with status 0 (before anyone killed it).
    var completed: Bool { child.termination == .exited(0) }

    /// SIGKILL: the kernel closes its sockets as they stand.
    func kill() {
        child.signal(SIGKILL)
        child.waitUntilExit()
    }

    /// Waits for the end (SIGKILL after `timeout`); returns the exit status (the signal number
    /// when killed) and standard output.
    func wait(timeout: Duration = .seconds(120)) async -> (status: Int32, output: String) {
        let deadline = ContinuousClock.now + timeout
        while child.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        child.signal(SIGKILL)
        let termination = await child.exited()
        let data = await output.contents()
        return (termination.status, String(decoding: data, as: UTF8.self))
    }
}

/// Waits (up to `timeout`, blocking the calling thread) until the file at `path` holds at least `bytes`.
func fileReaches(_ path: String, atLeast bytes: Int, timeout: Duration = .seconds(30)) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, size >= bytes { return true }
        if ContinuousClock.now >= deadline { return false }
        usleep(20_000)
    }
}

/// Runs blocking, timing-sensitive work (wait for a transfer, then kill something) on a thread of
/// its own: Swift's cooperative pool has as many threads as CPUs, and other tests running in
/// parallel may block them for seconds.
func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}

/// Two files for transfers: random bytes (integrity checks) and zeros (large transfers that get cut).
struct BlobFiles: Sendable {
    let path: String
    let digest: String
    let zeroPath: String
    let zeroDigest: String
    let zeroSize: Int
    /// Bytes in the random file.
    let size: Int

    static func make(randomMiB: Int, zeroMiB: Int) async throws -> BlobFiles {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-\(UUID().uuidString.prefix(8))").path
        let script = "head -c \(randomMiB << 20) /dev/urandom > '\(base).rnd' && head -c \(zeroMiB << 20) /dev/zero > '\(base).zero' && sha256sum '\(base).rnd' '\(base).zero'"
        let sums = try await Command("sh", ["-c", script], timeout: .seconds(120)).runInBackground().checked().standardOutput
            .split(separator: "\n").map { "sha256:" + $0.prefix(64) }
        guard sums.count == 2 else { throw HarnessError("sha256sum printed \(sums)") }
        return BlobFiles(path: base + ".rnd", digest: sums[0], zeroPath: base + ".zero", zeroDigest: sums[1], zeroSize: zeroMiB << 20, size: randomMiB << 20)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.removeItem(atPath: zeroPath)
    }

    /// Starts an upload session; returns its `Location`.
    func startUpload(to deployment: Deployment, repository: String) async throws -> String {
        let start = try await deployment.curl(["-i", "-X", "POST", "-u", deployment.credentials("alice")], path: "/v2/\(repository)/blobs/uploads/")
        guard start.standardOutput.hasPrefix("HTTP/1.1 202") || start.standardOutput.hasPrefix("HTTP/2 202"),
            let line = start.standardOutput.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("location:") })
        else { throw HarnessError("upload did not start: \(start)") }
        return String(line.dropFirst("location:".count)).trimmingCharacters(in: .whitespaces)
    }

    /// The file in the registry's storage that an upload session's bytes land in.
    func uploadData(_ deployment: Deployment, repository: String, location: String) -> String {
        let session = location.components(separatedBy: "/blobs/uploads/").last?.components(separatedBy: "?").first ?? ""
        return deployment.storage + "/repositories/\(repository)/_uploads/\(session)/data"
    }

    /// Pushes a file (monolithic PUT); returns the status.
    func push(_ file: String, digest: String, to deployment: Deployment, repository: String) async throws -> String {
        let location = try await startUpload(to: deployment, repository: repository)
        return try await Command(
            "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("alice"), "-H", "Content-Type: application/octet-stream", "-T", file, location + "&digest=" + digest]
                + (deployment.scheme == "https" ? ["--cacert", deployment.directory + "/tls/ca.crt"] : []),
            timeout: .seconds(300)
        ).runInBackground().standardOutput
    }

    /// Pulls a blob; returns the digest of what arrived.
    func pull(from deployment: Deployment, repository: String, digest: String) async throws -> String {
        let result = try await Command(
            "sh", ["-c", "curl -s --max-time 120 -u '\(deployment.credentials("alice"))' '\(deployment.url)/v2/\(repository)/blobs/\(digest)' | sha256sum"],
            timeout: .seconds(150)
        ).runInBackground()
        return "sha256:" + result.standardOutput.prefix(64)
    }
}

/// One connection's worth of raw bytes.
struct RawCase: Codable, Sendable {
    var name: String
    /// Sent as is (base64 in the JSON the client reads).
    var bytes: Data
    /// Seconds between single bytes; `nil` sends everything at once.
    var trickle: Double?
    /// The longest the trickle goes on.
    var trickleLimit: Double?
    /// How long to wait for the server after sending; with `untilQuiet`, how long the server may
    /// send nothing.
    var readTimeout: Double
    /// The read timeout restarts whenever bytes arrive (an inactivity timeout): a response that
    /// keeps coming is read to its end however busy the machine is, and only a server that sends
    /// nothing and does not close for `readTimeout` (a stall) ends the read.
    var untilQuiet = false
    /// Shut the write side after sending.
    var halfClose = false
    /// Send the first `pauseAfter` bytes, wait `pause` seconds (or, with `awaitAnswer`, until a
    /// response head has arrived, for at most `readTimeout`), then the rest.
    var pauseAfter: Int?
    var pause: Double?
    var awaitAnswer = false
    /// Seconds to wait after sending before reading anything.
    var readDelay: Double?
    /// `SO_RCVBUF` of the client socket (small: the server's writes back up sooner).
    var receiveBuffer: Int?

    init(
        name: String, bytes: Data, trickle: Double? = nil, trickleLimit: Double? = nil, readTimeout: Double, untilQuiet: Bool = false,
        halfClose: Bool = false, pauseAfter: Int? = nil, pause: Double? = nil, awaitAnswer: Bool = false, readDelay: Double? = nil,
        receiveBuffer: Int? = nil
    ) {
        self.awaitAnswer = awaitAnswer
        self.untilQuiet = untilQuiet
        self.readDelay = readDelay
        self.receiveBuffer = receiveBuffer
        self.name = name
        self.bytes = bytes
        self.trickle = trickle
        self.trickleLimit = trickleLimit
        self.readTimeout = readTimeout
        self.halfClose = halfClose
        self.pauseAfter = pauseAfter
        self.pause = pause
    }
}

/// What the server did with one ``RawCase``.
struct RawOutcome: Decodable, Sendable, CustomStringConvertible {
    var name: String
    /// Status codes of the responses read, in order (1xx included).
    var statuses: [Int]
    /// Body bytes received of each response in `statuses` (fewer than its length if cut short).
    var bodies: [Int]
    /// Each response's `Content-Length` (-1: none).
    var lengths: [Int]
    /// Bytes received in all.
    var bytes: Int
    /// Seconds since the last byte (or since sending, if none came) when the read ended.
    var quiet: Double
    /// Bytes that were no HTTP response.
    var unparsed: Bool
    /// The server closed (FIN or reset) before the read timeout.
    var closed: Bool
    var reset: Bool
    /// From connecting until the close (or the timeout).
    var seconds: Double
    var error: String?
    var head: String

    /// Refused: every final status is one of `allowing` (at most one), or no answer at all, and the connection closed.
    func refused(allowing: Set<Int>) -> Bool {
        let finals = statuses.filter { $0 >= 200 }
        return closed && !unparsed && finals.count <= 1 && finals.allSatisfy { allowing.contains($0) }
    }

    /// Whether response `index` arrived with its whole `Content-Length` body.
    func hasWholeBody(_ index: Int) -> Bool {
        index < lengths.count && lengths[index] >= 0 && bodies[index] == lengths[index]
    }

    var summary: String {
        (statuses.isEmpty ? "none" : statuses.map(String.init).joined(separator: "+")) + (closed ? (reset ? "/reset" : "/closed") : "/open")
            + String(format: "@%.1fs", seconds)
    }

    /// The summary with each body's bytes against its length, and the silence at the end.
    var progress: String {
        let bodyCounts = zip(bodies, lengths).map { "\($0)/\($1 < 0 ? "?" : String($1))" }.joined(separator: "+")
        return summary + " bodies=\(bodyCounts.isEmpty ? "none" : bodyCounts) bytes=\(bytes)" + String(format: " quiet=%.1fs", quiet)
    }

    var description: String { "\(progress) head=\(head.debugDescription)\(error.map { " error=\($0)" } ?? "")\(unparsed ? " UNPARSED" : "")" }
}

/// Runs ``RawCase``s, each on its own connection, concurrently, with one python3 process.
enum RawExchange {
    /// Runs on a thread of its own (the python client takes seconds), so the test's other tasks keep running.
    static func run(_ cases: [RawCase], port: Int, parallel: Int = 16) async throws -> [String: RawOutcome] {
        var input = Data()
        let encoder = JSONEncoder()
        for rawCase in cases {
            input.append(try encoder.encode(rawCase))
            input.append(UInt8(ascii: "\n"))
        }
        let result = try await Command("python3", ["-c", script, String(port), String(parallel)], standardInput: input, timeout: .seconds(300))
            .runInBackground().checked()
        var outcomes: [String: RawOutcome] = [:]
        for line in result.standardOutputData.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            let outcome = try JSONDecoder().decode(RawOutcome.self, from: Data(line))
            outcomes[outcome.name] = outcome
        }
        guard outcomes.count == cases.count else { throw HarnessError("the raw client answered \(outcomes.count) of \(cases.count) cases: \(result)") }
        return outcomes
    }

    static let script = #"""
        import base64, errno, json, select, socket, sys, threading, time
        from concurrent.futures import ThreadPoolExecutor
        port, parallel = int(sys.argv[1]), int(sys.argv[2])
        cases = [json.loads(line) for line in sys.stdin if line.strip()]
        out_lock = threading.Lock()

        def parse(buf):
            """The responses in buf (status, body bytes received, Content-Length or -1), and whether
            bytes followed that are no response."""
            responses, i = [], 0
            while i < len(buf):
                end = buf.find(b"\r\n\r\n", i)
                first = bytes(buf[i:buf.find(b"\r\n", i) if buf.find(b"\r\n", i) >= 0 else len(buf)]).split(b" ")
                if len(first) < 2 or not first[0].startswith(b"HTTP/1.") or not first[1].isdigit() or len(first[1]) != 3:
                    return responses, True
                status = int(first[1])
                if end < 0:
                    responses.append((status, 0, -1))
                    return responses, False
                headers = {}
                for line in bytes(buf[i:end]).decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers.setdefault(name.strip().lower(), []).append(value.strip())
                i = end + 4
                if status < 200 or status in (204, 304):
                    responses.append((status, 0, -1))
                    continue
                if "content-length" in headers:
                    length = int(headers["content-length"][0])
                    responses.append((status, min(length, len(buf) - i), length))
                    i += length
                elif "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
                    body = 0
                    while True:
                        line_end = buf.find(b"\r\n", i)
                        if line_end < 0:
                            responses.append((status, body, -1))
                            return responses, False
                        size = int(bytes(buf[i:line_end]).split(b";")[0] or b"0", 16)
                        i = line_end + 2
                        if size == 0:
                            i += 2
                            break
                        body += min(size, len(buf) - i)
                        i += size + 2
                    responses.append((status, body, -1))
                else:
                    responses.append((status, len(buf) - i, -1))
                    return responses, False
            return responses, False

        def run(case):
            data = base64.b64decode(case["bytes"])
            started = time.monotonic()
            # A bytearray grows in place: appending to bytes copies everything received so far on
            # every chunk, which for a 16 MiB download read in 32 KiB pieces is gigabytes of copying
            # (the read then takes as long as the machine is busy).
            received, closed, reset, error = bytearray(), False, False, None
            last_byte = None
            s = socket.socket()
            if case.get("receiveBuffer"):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, case["receiveBuffer"])
            s.settimeout(30)
            s.connect(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            def receive(wait):
                nonlocal closed, reset, last_byte
                ready, _, _ = select.select([s], [], [], max(wait, 0))
                if not ready:
                    return
                try:
                    chunk = s.recv(1 << 20)
                except ConnectionResetError:
                    closed = reset = True
                    return
                if chunk:
                    received.extend(chunk)
                    last_byte = time.monotonic()
                else:
                    closed = True
            try:
                if case.get("trickle"):
                    limit = started + (case.get("trickleLimit") or 30)
                    for k in range(len(data)):
                        s.sendall(data[k:k + 1])
                        receive(case["trickle"])
                        if closed or time.monotonic() > limit:
                            break
                elif case.get("pauseAfter") is not None:
                    s.sendall(data[:case["pauseAfter"]])
                    if case.get("awaitAnswer"):
                        answer_by = time.monotonic() + case["readTimeout"]
                        while b"\r\n\r\n" not in received and not closed and time.monotonic() < answer_by:
                            receive(answer_by - time.monotonic())
                    else:
                        receive(case.get("pause") or 0.5)
                    if not closed:
                        s.sendall(data[case["pauseAfter"]:])
                elif data:
                    s.sendall(data)
                if case.get("halfClose") and not closed:
                    s.shutdown(socket.SHUT_WR)
            except OSError as e:
                error = "send: %s" % e
            if case.get("readDelay"):
                time.sleep(case["readDelay"])
            sent = time.monotonic()
            def deadline():
                if case.get("untilQuiet"):
                    return max(sent, last_byte or sent) + case["readTimeout"]
                return sent + case["readTimeout"]
            while not closed and time.monotonic() < deadline():
                try:
                    receive(deadline() - time.monotonic())
                except OSError as e:
                    error, closed = "recv: %s" % e, True
            ended = time.monotonic()
            seconds = ended - started
            s.close()
            responses, unparsed = parse(received)
            head = bytes(received.split(b"\r\n", 1)[0]).decode("latin-1")[:200]
            return {"name": case["name"], "statuses": [r[0] for r in responses], "bodies": [r[1] for r in responses],
                    "lengths": [r[2] for r in responses], "bytes": len(received), "quiet": ended - max(sent, last_byte or sent),
                    "unparsed": unparsed, "closed": closed, "reset": reset, "seconds": seconds, "error": error, "head": head}

        with ThreadPoolExecutor(max_workers=parallel) as pool:
            for result in pool.map(run, cases):
                sys.stdout.write(json.dumps(result) + "\n")
        """#
}

/// The randomized raw-request mutator: valid seed requests (authenticated pulls, pushes, token
/// requests, pipelined pairs), mutated by byte flips, insertions of delimiters and framing
/// headers, deletions, duplications, truncations, splices and odd numbers, sent on fresh
/// connections (some in pieces, some half-closed) by a pool of workers.
struct RequestMutator {
    struct Report: Decodable, Sendable {
        var tried: Int
        var refused: Int
        var statuses: [String: Int]
        var closedWithoutAnswer: Int
        var timedOut: Int
        var serverErrors: Int
        var malformedAnswers: Int
        var healthChecks: Int
        var healthFailures: Int
        var seconds: Double
        var seed: UInt64
        var samples: [String]

        var summary: String {
            "seed \(seed), requests tried: \(tried), refused (4xx/5xx or closed): \(refused), statuses \(statuses.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")), "
                + "closed without an answer: \(closedWithoutAnswer), left open unanswered past the head timeout: \(timedOut), 500s: \(serverErrors), malformed answers: \(malformedAnswers), "
                + "health checks: \(healthChecks) (\(healthFailures) failed), \(String(format: "%.1f", seconds)) s"
        }
    }

    static func run(port: Int, credentials: String, repository: String, seed: UInt64, requests: Int, workers: Int, readTimeout: Double) async throws -> Report {
        let result = try await Command(
            "python3", ["-c", script, String(port), credentials, repository, String(seed), String(requests), String(workers), String(readTimeout)],
            timeout: .seconds(max(600, requests))
        ).runInBackground().checked()
        return try JSONDecoder().decode(Report.self, from: result.standardOutputData)
    }

    static let script = #"""
        import base64, hashlib, json, random, select, socket, sys, threading, time
        port, credentials, repository = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        seed, total, workers, read_timeout = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
        basic = "Basic " + base64.b64encode(credentials.encode()).decode()
        blob = b"fuzz blob\n"
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()

        def req(method, target, headers=(), body=b"", version="HTTP/1.1"):
            head = "%s %s %s\r\nHost: 127.0.0.1:%d\r\n" % (method, target, version, port)
            for name, value in headers:
                head += "%s: %s\r\n" % (name, value)
            if body or method in ("POST", "PUT", "PATCH"):
                head += "Content-Length: %d\r\n" % len(body)
            return head.encode() + b"\r\n" + body

        def chunked(method, target, headers, body):
            head = "%s %s HTTP/1.1\r\nHost: x\r\n" % (method, target)
            for name, value in headers:
                head += "%s: %s\r\n" % (name, value)
            head += "Transfer-Encoding: chunked\r\n\r\n"
            return head.encode() + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"

        auth = [("Authorization", basic)]
        seeds = [
            req("GET", "/v2/", auth),
            req("GET", "/v2/%s/tags/list" % repository, auth),
            req("GET", "/v2/%s/tags/list?n=2&last=a" % repository, auth + [("Accept", "application/json")]),
            req("HEAD", "/v2/%s/manifests/latest" % repository, auth + [("Accept", "application/vnd.oci.image.manifest.v1+json")]),
            req("GET", "/v2/%s/blobs/%s" % (repository, digest), auth),
            req("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repository, digest), auth + [("Content-Type", "application/octet-stream")], blob),
            req("POST", "/v2/%s/blobs/uploads/" % repository, auth),
            chunked("PATCH", "/v2/%s/blobs/uploads/00000000-0000-0000-0000-000000000000" % repository, auth, blob),
            req("DELETE", "/v2/%s/manifests/%s" % (repository, digest), auth),
            req("GET", "/v2/_catalog?n=10", auth),
            req("GET", "/token?service=portcullis&scope=repository:%s:pull,push" % repository, auth),
            req("GET", "/token?service=portcullis&scope=repository:%s:pull&offline_token=true" % repository, auth),
            req("POST", "/token", [("Content-Type", "application/x-www-form-urlencoded")],
                ("grant_type=password&username=%s&password=%s&service=portcullis&client_id=fuzz&scope=repository:%s:pull" % (credentials.split(":")[0], credentials.split(":", 1)[1], repository)).encode()),
            req("GET", "/v2/%s/tags/list" % repository, [("Authorization", "Bearer eyJhbGciOiJFUzI1NiJ9.e30.AAAA")]),
            req("GET", "/healthz") + req("GET", "/v2/%s/tags/list" % repository, auth),
            req("GET", "/readyz"),
            req("GET", "/metrics"),
        ]
        delimiters = [b"\r\n", b"\n", b"\r", b"\x00", b" ", b"\t", b":", b",", b";", b"%00", b"%2e", b"%2f", b"..", b"/", b"//", b"?", b"#",
                      b"\xff", b"\xc3\xa9", b"\r\n ", b"\r\n\r\n", b"0\r\n\r\n", b"chunked", b"HTTP/1.1", b"@", b"\\"]
        framing = [
            "Transfer-Encoding: chunked", "Transfer-Encoding: chunked, identity", "Transfer-Encoding: identity, chunked",
            "Transfer-Encoding: gzip", "Transfer-Encoding:  chunked ", "Transfer-Encoding: CHUNKED", "Content-Length: 0",
            "Content-Length: 5", "Content-Length: -1", "Content-Length: 99999999999999999999", "Content-Length: 1, 2",
            "Content-Length: 4294967296", "Expect: 100-continue", "Expect: 100-continue, x", "Connection: close", "Connection: keep-alive, Upgrade",
            "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA", "Host: evil.example", "Host:", "X-Forwarded-For: 6.6.6.6",
            "Authorization: Basic", "Authorization: Bearer ", "Authorization: " + basic, "Authorization: Basic " + "A" * 4000,
            "Content-Type: application/x-www-form-urlencoded", "Accept: */*", "Range: bytes=0-1", "Range: bytes=-1, 0-",
            "X-Long: " + "x" * 9000, "Trailer: Content-Length", "TE: trailers", "Proxy-Authorization: Basic " + basic,
        ]
        numbers = [b"0", b"1", b"-1", b"+1", b"00", b"0x10", b"4294967296", b"18446744073709551616", b"99999999999999999999", b"1e3", b" 1"]

        def mutate(rng, data):
            data = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                op = rng.randrange(10)
                pos = rng.randrange(len(data) + 1) if data else 0
                if op == 0 and data:
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
                elif op == 1:
                    data[pos:pos] = rng.choice(delimiters)
                elif op == 2:
                    data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
                elif op == 3 and data:
                    end = min(len(data), pos + rng.randint(1, 32))
                    del data[pos:end]
                elif op == 4 and data:
                    end = min(len(data), pos + rng.randint(1, 64))
                    data[end:end] = data[pos:end]
                elif op == 5:
                    line_end = data.find(b"\r\n")
                    if line_end >= 0:
                        data[line_end + 2:line_end + 2] = (rng.choice(framing) + "\r\n").encode()
                elif op == 6:
                    lines = data.split(b"\r\n")
                    if len(lines) > 2:
                        k = rng.randrange(1, len(lines) - 1)
                        if lines[k]:
                            lines[k] = rng.choice(framing).encode()
                        data = bytearray(b"\r\n".join(lines))
                elif op == 7:
                    digits = [i for i in range(len(data)) if 48 <= data[i] <= 57]
                    if digits:
                        k = rng.choice(digits)
                        data[k:k + 1] = rng.choice(numbers)
                elif op == 8 and data:
                    del data[rng.randrange(len(data)):]
                else:
                    data += rng.choice(seeds)
            return bytes(data)

        def parse(buf):
            """(statuses, malformed, complete): complete when buf ends exactly after a final response."""
            statuses, i, complete = [], 0, False
            while i < len(buf):
                complete = False
                line_end = buf.find(b"\r\n", i)
                first = buf[i:line_end if line_end >= 0 else len(buf)].split(b" ")
                if len(first) < 2 or not first[0].startswith(b"HTTP/1.") or len(first[1]) != 3 or not first[1].isdigit():
                    return statuses, True, False
                statuses.append(int(first[1]))
                end = buf.find(b"\r\n\r\n", i)
                if end < 0:
                    break
                headers = {}
                for line in buf[i:end].decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers.setdefault(name.strip().lower(), []).append(value.strip())
                i = end + 4
                status = statuses[-1]
                if status < 200:
                    continue
                if status in (204, 304):
                    complete = i == len(buf)
                    continue
                length = headers.get("content-length")
                if length is None:
                    if "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
                        terminator = buf.find(b"\r\n0\r\n\r\n", i - 2)
                        if terminator < 0:
                            break
                        i = terminator + 7
                        complete = i == len(buf)
                        continue
                    break
                body_length = int(length[0])
                # A HEAD answer announces a length but carries no body: accept either.
                if buf[i:i + 7] == b"HTTP/1." and body_length > 0:
                    continue
                i += body_length
                complete = i == len(buf)
            return statuses, False, complete

        lock = threading.Lock()
        stats = {"tried": 0, "refused": 0, "statuses": {}, "closedWithoutAnswer": 0, "timedOut": 0, "serverErrors": 0,
                 "malformedAnswers": 0, "healthChecks": 0, "healthFailures": 0, "samples": []}

        def exchange(rng, data):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            received, closed = b"", False
            try:
                if rng.random() < 0.15 and len(data) > 2:
                    cut = sorted(rng.sample(range(1, len(data)), min(2, len(data) - 1)))
                    pieces = [data[:cut[0]], data[cut[0]:cut[-1]], data[cut[-1]:]]
                    for piece in pieces:
                        s.sendall(piece)
                        time.sleep(rng.random() * 0.05)
                else:
                    s.sendall(data)
                if rng.random() < 0.3:
                    s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            # Read until the server closes; once a complete answer is in, wait only a moment for more.
            deadline = time.monotonic() + read_timeout
            answered_at = None
            while True:
                limit = deadline if answered_at is None else min(deadline, answered_at + 0.3)
                if time.monotonic() >= limit:
                    break
                ready, _, _ = select.select([s], [], [], max(0, limit - time.monotonic()))
                if not ready:
                    break
                try:
                    chunk = s.recv(1 << 20)
                except OSError:
                    closed = True
                    break
                if not chunk:
                    closed = True
                    break
                received += chunk
                answered_at = time.monotonic() if parse(received)[2] else None
            s.close()
            return received, closed, answered_at is not None

        def health():
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = s.recv(64)
                s.close()
                return answer.startswith(b"HTTP/1.1 200")
            except OSError:
                return False

        started = time.monotonic()
        def work(worker):
            while True:
                with lock:
                    if stats["tried"] >= total:
                        return
                    stats["tried"] += 1
                    number = stats["tried"]
                rng = random.Random(seed * 1000003 + number)
                data = mutate(rng, rng.choice(seeds))
                try:
                    received, closed, answered = exchange(rng, data)
                except OSError as e:
                    received, closed, answered = b"", True, False
                statuses, malformed, _ = parse(received)
                finals = [code for code in statuses if code >= 200]
                with lock:
                    for code in statuses:
                        stats["statuses"][str(code)] = stats["statuses"].get(str(code), 0) + 1
                    if not statuses and closed:
                        stats["closedWithoutAnswer"] += 1
                    if not closed and not answered:
                        stats["timedOut"] += 1
                        if len(stats["samples"]) < 50:
                            stats["samples"].append("left open #%d: request %r -> %r" % (number, data[:600], received[:300]))
                    if not finals or finals[0] >= 400:
                        stats["refused"] += 1
                    notable = None
                    if malformed:
                        stats["malformedAnswers"] += 1
                        notable = "malformed answer"
                    if any(code == 500 for code in statuses):
                        stats["serverErrors"] += 1
                        notable = "500"
                    if notable and len(stats["samples"]) < 50:
                        stats["samples"].append("%s #%d: request %r -> %r" % (notable, number, data[:600], received[:300]))
                if number % 50 == 0:
                    ok = health()
                    with lock:
                        stats["healthChecks"] += 1
                        if not ok:
                            stats["healthFailures"] += 1

        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats["seconds"] = time.monotonic() - started
        stats["seed"] = seed
        print(json.dumps(stats))
        """#
}
