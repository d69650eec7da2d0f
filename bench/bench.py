#!/usr/bin/env python3
"""Portcullis benchmark (`make bench`, via bench/run).

Starts, on loopback only:
  - registry A: docker-registry 2.8.2 without auth (the bare target, and nginx's upstream);
  - registry B: docker-registry 2.8.2 with token auth trusting Portcullis (Portcullis's upstream);
    both serve the same filesystem storage directory, seeded once through registry A's API;
  - nginx per distribution's recipe (docs/recipes/nginx.md: TLS and auth_basic left out) and a
    tuned nginx (buffering off, 256 KiB buffers, upstream keep-alive), both in front of A;
  - Portcullis (release build) in front of B, clients presenting a Portcullis Bearer token.
It measures every target interleaved over several rounds (the target order rotates each round),
prints one table of medians with ratios to the bare registry, and writes it to
bench/results/YYYY-MM-DD-<host>.md. Every process it starts is stopped by PID on exit, also on
failure or Ctrl-C.
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
CLK_TCK = os.sysconf("SC_CLK_TCK")

SERVICES = []               # everything started, stopped in reverse order on exit


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


def wait_for_http(port, path, service, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not service.alive():
            raise BenchError(f"{service.name} exited early; see {service.log_path}")
        try:
            status, _, _ = request("GET", port, path)
            return status
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"{service.name} did not answer on 127.0.0.1:{port}{path} within {timeout}s; see {service.log_path}")


def request(method, port, path, headers=None, body=None):
    """One small HTTP/1.1 exchange: (status, headers dict lower-cased, body bytes)."""
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
    access_log {dir}/access.log{access_log_options};
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
        listen 127.0.0.1:{port};
        # disable any limits to avoid HTTP 413 for large image uploads
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


def nginx_config(directory, port, upstream, tuned, run_as_root):
    common = dict(dir=directory, port=port, upstream=upstream)
    user = "user root;\n" if run_as_root else ""
    if not tuned:
        # The recipe as published: one worker (nginx's default), default buffering, HTTP/1.0 to
        # the registry without keep-alive.
        return user + NGINX_COMMON.format(
            worker_connections=1024, access_log_options="", http_extra="", upstream_extra="", location_extra="", **common)
    return user + "worker_processes auto;\n" + NGINX_COMMON.format(
        worker_connections=4096,
        access_log_options=" combined buffer=256k flush=1s",
        http_extra="    sendfile on;\n    tcp_nodelay on;\n",
        upstream_extra="        keepalive 64;\n",
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
        ports = {self.port_open, self.port_auth, self.port_portcullis, self.port_nginx_recipe, self.port_nginx_tuned}
        if len(ports) != 5:
            raise BenchError("could not find five distinct free ports")

        # Users: `bench` (the benchmark client) and cold users, all bcrypt cost 10.
        log(f"creating {self.args.cold_users} bcrypt cost-10 users for the cold-credential test")
        self.cold_users = [(f"cold{i:04d}", base64.urlsafe_b64encode(os.urandom(9)).decode())
                           for i in range(self.args.cold_users)]
        users = [("bench", self.password)] + self.cold_users

        def hash_user(user):
            return run(["htpasswd", "-nbB", "-C", "10", user[0], user[1]]).stdout.strip()

        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
            lines = list(pool.map(hash_user, users))
        write(f"{w}/users.htpasswd", "\n".join(lines) + "\n", 0o600)

        run([self.binary, "keys", "generate", "--out", f"{w}/keys"])
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
        write(f"{w}/portcullis.yaml", f"""listen: 127.0.0.1:{self.port_portcullis}
public_url: http://127.0.0.1:{self.port_portcullis}
{upstream_block}
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
  - {{account: "*", name: "${{account}}/**", actions: [pull, push, delete]}}
log:
  level: info
""")
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
        for name, port, tuned in (("recipe", self.port_nginx_recipe, False), ("tuned", self.port_nginx_tuned, True)):
            directory = f"{w}/nginx-{name}"
            os.makedirs(directory)
            write(f"{directory}/nginx.conf", nginx_config(directory, port, self.port_open, tuned, run_as_root))
            run(["nginx", "-t", "-q", "-p", directory, "-e", f"{directory}/error.log", "-c", f"{directory}/nginx.conf"])
            self.nginx[name] = Service(
                f"nginx ({name})",
                ["nginx", "-p", directory, "-e", f"{directory}/error.log", "-c", f"{directory}/nginx.conf", "-g", "daemon off;"],
                f"{directory}/stdout.log")
            wait_for_http(port, "/v2/", self.nginx[name])

        self.portcullis = Service("portcullis", [self.binary, "serve", "--config", f"{w}/portcullis.yaml"],
                                  f"{w}/portcullis.log")
        wait_for_http(self.port_portcullis, "/healthz", self.portcullis)

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
            dict(key="portcullis", title="Portcullis", port=self.port_portcullis,
                 headers=[f"Authorization: Bearer {token}"], proxy=self.portcullis, registry=self.registry_auth),
            dict(key="registry-auth", title="registry + token auth, no proxy", port=self.port_auth,
                 headers=[f"Authorization: Bearer {registry_token}"], proxy=None, registry=self.registry_auth,
                 wrk_only=True),
        ]
        # Every target serves the manifest and the blobs before anything is measured.
        self.idle_rss = {}
        for target in self.targets:
            headers = dict(h.split(": ", 1) for h in target["headers"])
            status, response_headers, body = request(
                "GET", target["port"], f"/v2/{REPO}/manifests/latest", dict(headers, Accept=OCI_MANIFEST))
            if status != 200 or hashlib.sha256(body).hexdigest() != self.manifest_digest[7:]:
                raise BenchError(f"{target['title']}: manifest GET answered {status}: {body[:300]!r}")
            status, _, body = request("GET", target["port"], f"/v2/{REPO}/blobs/{self.small_digest}", headers)
            if status != 200 or len(body) != SMALL_SIZE:
                raise BenchError(f"{target['title']}: small blob GET answered {status}")
            if target["proxy"]:
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
        self.results.setdefault((test, target["key"]), []).append(value)

    def measure_blob_get(self, target):
        base_url = f"http://127.0.0.1:{target['port']}"
        proxy_before = cpu_seconds(target["proxy"].pids()) if target["proxy"] else 0
        out = self.curl(target["headers"], ["-o", "/dev/null", "-w", "%{http_code} %{size_download} %{speed_download}",
                                            f"{base_url}/v2/{REPO}/blobs/{self.big_digest}"])
        code, size, speed = out.split()
        if code != "200" or int(size) != BIG_SIZE:
            raise BenchError(f"{target['title']}: 1 GiB blob GET answered {code} with {size} bytes")
        self.record("blob_get", target, float(speed) / MIB)
        if target["proxy"]:
            self.record("cpu_per_gib", target, (cpu_seconds(target["proxy"].pids()) - proxy_before) * 1000)

    def measure_put(self, target, chunked):
        base_url = f"http://127.0.0.1:{target['port']}"
        if chunked:
            seconds = self.put_chunked(base_url, target["headers"])
        else:
            seconds = self.put_monolithic(base_url, target["headers"], f"{self.work}/data/upload.bin", self.upload_digest)
        self.record("put_chunked" if chunked else "put_mono", target, UPLOAD_SIZE / MIB / seconds)

    def wrk(self, port, path, headers, connections, seconds):
        argv = ["wrk", "-t", str(min(2, os.cpu_count() or 2)), "-c", str(connections), "-d", f"{seconds}s",
                "--timeout", "10s", "-s", WRK_LUA]
        for header in headers:
            argv += ["-H", header]
        result = run(argv + [f"http://127.0.0.1:{port}{path}"], timeout=seconds + 60)
        match = re.search(r"^WRKJSON (\{.*\})$", result.stdout, re.M)
        if not match:
            raise BenchError(f"wrk printed no report: {result.stdout[-500:]} {result.stderr[-500:]}")
        return json.loads(match.group(1))

    def measure_wrk(self, test, target, path, headers, connections):
        proxy_pids = target["proxy"].pids() if target["proxy"] else []
        registry_pids = target["registry"].pids() if target.get("registry") else []
        proxy_before, registry_before = cpu_seconds(proxy_pids), cpu_seconds(registry_pids)
        report = self.wrk(target["port"], path, target["headers"] + headers, connections, self.args.wrk_seconds)
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
            entry = self.errors.setdefault((key, target["key"]), {})
            for k, v in errors.items():
                entry[k] = entry.get(k, 0) + v

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
            entry = self.errors.setdefault(("token_cached", target["key"]), {})
            for k, v in errors.items():
                entry[k] = entry.get(k, 0) + v

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

    def measure_idle_connections(self, target, count=1000):
        """`count` keep-alive connections, each after one manifest GET, held open: the proxy's
        resident memory per idle connection, and what is left once they have all closed."""
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
        self.idle_connections[target["key"]] = dict(
            per_connection_kib=max(0, held - before) / count, held_mib=held / 1024, after_close_mib=after / 1024, before_mib=before / 1024)

    # --- schedule -----------------------------------------------------------------------------

    def warm_up(self):
        log("warming up every target")
        for target in self.targets:
            headers = target["headers"]
            self.wrk(target["port"], f"/v2/{REPO}/manifests/latest", headers + [f"Accept: {OCI_MANIFEST}"], 32, 1)
            if not target.get("wrk_only"):
                # The first commit of a digest moves the blob into place; later ones find it there.
                self.put_monolithic(f"http://127.0.0.1:{target['port']}", headers, f"{self.work}/data/upload.bin",
                                    self.upload_digest)

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
            for connections in self.args.connections:
                for target in rotated(self.targets):
                    self.quiet(self.measure_wrk, "manifest", target, f"/v2/{REPO}/manifests/latest",
                               [f"Accept: {OCI_MANIFEST}"], connections)
                for target in rotated(self.targets):
                    self.quiet(self.measure_wrk, "small", target, f"/v2/{REPO}/blobs/{self.small_digest}", [], connections)
            self.quiet(self.measure_token_cached, portcullis)
            # Fresh users each time: a repeat would measure cached credentials.
            self.quiet(self.measure_token_cold, portcullis, cold[number * per_round:(number + 1) * per_round], retry=False)
        log(f"memory: {self.args.stream_clients} slow clients streaming the 1 GiB blob through each proxy")
        for target in transfer_targets:
            self.measure_memory(target)
        log("memory: 1,000 idle keep-alive connections (one request each) on each proxy")
        for target in transfer_targets:
            self.measure_idle_connections(target)

    # --- report -------------------------------------------------------------------------------

    def median(self, test, key):
        values = self.results.get((test, key))
        return statistics.median(values) if values else None

    def table(self):
        columns = self.targets
        lines = []
        header = "| figure | " + " | ".join(t["title"] for t in columns) + " |"
        lines += [header, "|---|" + "---:|" * len(columns)]

        def fmt(value, digits):
            if value is None:
                return "–"
            return f"{value:,.{digits}f}"

        def row(label, test, digits=0, ratio=True, only=None):
            cells = []
            bare = self.median(test, "bare")
            for target in columns:
                if only and target["key"] not in only:
                    cells.append("–")
                    continue
                value = self.median(test, target["key"])
                cell = fmt(value, digits)
                if ratio and value is not None and bare and target["key"] != "bare":
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
        ])
        errors = ""
        if self.errors:
            errors = "\n† wrk reported errors (summed over rounds): " + "; ".join(
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
{errors}
## Targets (issue 14)

{self.targets_check()}

<details><summary>Per-round values</summary>

{self.raw_values()}

</details>
"""
        return text, f"{now:%Y-%m-%d}-{host}.md"


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
    text, name = bench.report(started, load_before, args.build_note,
                              foreign_share=foreign / (elapsed * (os.cpu_count() or 1)))
    os.makedirs(args.results, exist_ok=True)
    path = os.path.join(args.results, name)
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
    body = body.replace("\n## Targets (issue 14)\n", "\n**Targets (issue 14)**\n")
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
