# Portcullis: the README's commands.
SWIFT ?= swift

.PHONY: setup build test demo clean

setup:
	bash scripts/setup

build:
	$(SWIFT) build

# Unit tests (Policy) and integration tests (real docker-registry 2.8.2 + skopeo + curl).
test: setup
	$(SWIFT) build --build-tests
	PORTCULLIS_BIN="$$($(SWIFT) build --show-bin-path)/portcullis" $(SWIFT) test

demo: setup
	$(SWIFT) build --product portcullis
	"$$($(SWIFT) build --show-bin-path)/portcullis" demo

clean:
	rm -rf .build
