# Portcullis: the README's commands.
SWIFT ?= swift

.PHONY: setup build test demo clean

setup:
	bash scripts/setup

build:
	$(SWIFT) build

# Unit tests (Policy) and integration tests (real docker-registry 2.8.2 + skopeo + curl).
test: setup check-deploy
	$(SWIFT) build --build-tests
	PORTCULLIS_BIN="$$($(SWIFT) build --show-bin-path)/portcullis" $(SWIFT) test

demo: setup
	$(SWIFT) build --product portcullis
	"$$($(SWIFT) build --show-bin-path)/portcullis" demo

clean:
	rm -rf .build

# Benchmark: bare registry vs nginx (recipe, tuned) vs Portcullis; installs nginx and wrk, builds
# the release binary into .build-release, writes bench/results/ and quotes it in README.md.
.PHONY: bench
bench:
	SWIFT="$(SWIFT)" bash bench/run

# deploy/: every kustomization rendered with kubectl and validated against the Kubernetes schemas
# (strict), image tags pinned, and every file the Containerfile copies present. Seconds, offline.
.PHONY: check-deploy
check-deploy: setup
	bash scripts/check-deploy
