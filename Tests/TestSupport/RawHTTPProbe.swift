import Foundation

/// One HTTP/1.1 request sent byte for byte as described: the request target is written exactly
/// as given (no normalisation of `.`, `..`, `//` or percent-escapes), so a test can show a
/// server the same raw path another server saw.
public struct RawHTTPRequest: Sendable, Codable, Hashable {
    /// The method, written as is (case included).
    public var method: String
    /// The request target: path and optional `?query`, exactly as it goes on the wire.
    public var target: String
    /// Header lines besides `Host` and `Content-Length`, in order; a name may repeat.
    public var headers: [[String]]
    /// The body; `Content-Length` is always sent for POST, PUT and PATCH, and whenever there is a body.
    public var body: Data?

    /// Describes a request.
    public init(method: String, target: String, headers: [(String, String)] = [], body: Data? = nil) {
        self.method = method
        self.target = target
        self.headers = headers.map { [$0.0, $0.1] }
        self.body = body
    }
}

/// What came back for one ``RawHTTPRequest``.
public struct RawHTTPResponse: Sendable, CustomStringConvertible {
    /// The status code; 0 when the exchange failed (see ``error``).
    public var status: Int
    /// Header lines in order.
    public var headers: [(name: String, value: String)]
    /// The body as UTF-8 (invalid sequences replaced), at most 256 KiB of it.
    public var body: String
    /// Why there is no response (connection closed, reset, timed out), if there is none.
    public var error: String?

    /// The first value of a header, matched case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    public var description: String {
        if let error { return "no response (\(error))" }
        let shown = headers.map { "\($0.name): \($0.value)" }.joined(separator: "; ")
        return "\(status) [\(shown)] \(body.prefix(300))"
    }
}

/// Sends many raw HTTP/1.1 requests quickly, over a few keep-alive connections, with one
/// `python3` process (its standard library only). Responses come back in request order.
///
/// ```swift
/// let responses = try RawHTTPProbe.send(
///     [RawHTTPRequest(method: "GET", target: "/v2/a/%2e%2e/b/tags/list")], port: port)
/// ```
public enum RawHTTPProbe {
    /// Sends `requests` to `host:port` and returns one response per request, in order.
    /// - Parameters:
    ///   - connections: how many keep-alive connections share the work.
    ///   - timeout: per-request socket timeout in seconds.
    /// - Throws: ``CommandError`` when `python3` fails, ``HarnessError`` when its output does not parse.
    public static func send(
        _ requests: [RawHTTPRequest], host: String = "127.0.0.1", port: Int, connections: Int = 4, timeout: Double = 30
    ) throws -> [RawHTTPResponse] {
        guard !requests.isEmpty else { return [] }
        let encoder = JSONEncoder()
        var input = Data()
        for request in requests {
            input.append(try encoder.encode(request))
            input.append(UInt8(ascii: "\n"))
        }
        let result = try Command(
            "python3", ["-c", script, host, String(port), String(connections), String(timeout)], standardInput: input,
            timeout: .seconds(600)
        ).run().checked()
        struct Line: Decodable {
            var i: Int
            var status: Int
            var headers: [[String]]
            var body: String
            var error: String?
        }
        let decoder = JSONDecoder()
        var responses = [RawHTTPResponse?](repeating: nil, count: requests.count)
        for text in result.standardOutputData.split(separator: UInt8(ascii: "\n")) where !text.isEmpty {
            let line = try decoder.decode(Line.self, from: Data(text))
            guard line.i >= 0 && line.i < requests.count else { throw HarnessError("probe answered for request \(line.i)") }
            responses[line.i] = RawHTTPResponse(
                status: line.status, headers: line.headers.map { ($0[0], $0.count > 1 ? $0[1] : "") }, body: line.body,
                error: line.error)
        }
        return try responses.enumerated().map { index, response in
            guard let response else { throw HarnessError("probe printed no answer for request \(index): \(result)") }
            return response
        }
    }

    /// The client: each worker owns one connection, reconnects when the server closes it, and
    /// retries a request once on a fresh connection when a reused one turned out to be dead.
    static let script = #"""
        import base64, http.client, json, socket, sys, threading
        host, port, workers, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
        requests = [json.loads(line) for line in sys.stdin if line.strip()]
        results = [None] * len(requests)

        def connect():
            s = socket.create_connection((host, port), timeout=timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s

        def exchange(sock, r):
            body = base64.b64decode(r["body"]) if r.get("body") else b""
            head = "%s %s HTTP/1.1\r\nHost: %s:%d\r\n" % (r["method"], r["target"], host, port)
            for name, value in r.get("headers", []):
                head += "%s: %s\r\n" % (name, value)
            if body or r["method"] in ("POST", "PUT", "PATCH"):
                head += "Content-Length: %d\r\n" % len(body)
            head += "\r\n"
            try:
                sock.sendall(head.encode("utf-8") + body)
            except OSError as e:
                # The server may have answered and closed before reading everything (a refused
                # oversized request): read that answer if it is there.
                try:
                    response = http.client.HTTPResponse(sock, method=r["method"])
                    response.begin()
                except (OSError, http.client.HTTPException):
                    raise e
            else:
                response = http.client.HTTPResponse(sock, method=r["method"])
                response.begin()
            data = response.read(256 * 1024)
            closes = response.will_close or len(data) >= 256 * 1024
            result = {"status": response.status, "headers": [[k, v] for k, v in response.getheaders()],
                      "body": data.decode("utf-8", "replace"), "error": None}
            response.close()
            return result, closes

        def work(indices):
            sock = None
            for i in indices:
                for attempt in range(2):
                    fresh = sock is None
                    if fresh:
                        try:
                            sock = connect()
                        except OSError as e:
                            results[i] = {"status": 0, "headers": [], "body": "", "error": "connect: %s" % e}
                            break
                    try:
                        result, closes = exchange(sock, requests[i])
                        results[i] = result
                        if closes:
                            sock.close()
                            sock = None
                        break
                    except (OSError, http.client.HTTPException) as e:
                        sock.close()
                        sock = None
                        if fresh or attempt == 1:
                            results[i] = {"status": 0, "headers": [], "body": "", "error": "%s: %s" % (type(e).__name__, e)}
                            break
            if sock is not None:
                sock.close()

        threads = [threading.Thread(target=work, args=(range(w, len(requests), workers),)) for w in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out = sys.stdout
        for i, result in enumerate(results):
            result["i"] = i
            out.write(json.dumps(result) + "\n")
        """#
}
