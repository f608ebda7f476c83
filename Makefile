# Build, test, benchmark and demo entry points. `make test` is what CI runs (through .ci/run).
TARGET   := x86_64-unknown-linux-gnu
CARGO    ?= cargo
# Static binaries: crt-static with an explicit --target, so proc-macros still build for the host.
export RUSTFLAGS := -C target-feature=+crt-static
REL      := target/$(TARGET)/release
OUT      := $(CURDIR)/out
BINS     := apk lbu init mkinitfs mkimage
export PROJECT_OUT := $(OUT)
export SHARED_DIR  := $(abspath $(CURDIR)/../shared)
# Where `make appliance` and `make demo` take Alpine's packages from: directories or http(s) URLs,
# space separated (default: the fixture medium in ../shared). Downloads are cached in out/cache.
ALPINE_MIRROR ?= $(SHARED_DIR)/fixtures/alpine-3.19.1/apks
export ALPINE_MIRROR

.PHONY: all build repo deps test lint bench fuzz demo appliance clean

all: build repo

build:
	$(CARGO) build --release --target $(TARGET) --workspace --bins
	mkdir -p $(OUT)/bin
	for b in $(BINS); do install -m 0755 $(REL)/$$b $(OUT)/bin/$$b; done
	$(CARGO) build --profile initramfs --target $(TARGET) -p init
	install -m 0755 target/$(TARGET)/initramfs/init $(OUT)/bin/init
	mkdir -p $(OUT)/share/mkinitfs && rm -rf $(OUT)/share/mkinitfs/features.d && cp -r mkinitfs/features.d $(OUT)/share/mkinitfs/

# The project's own repository: the lbu package, signed with the build key in out/keys/.
repo: build
	scripts/build-repo.sh

deps:
	scripts/deps.sh

test: deps all
	$(CARGO) test --release --target $(TARGET) --workspace

# Formatting and clippy, as the code is kept (not part of `make test`, to keep CI short).
lint:
	cargo fmt --all --check
	$(CARGO) clippy --release --target $(TARGET) --workspace --all-targets -- -D warnings

bench: deps all appliance
	scripts/bench.sh

fuzz:
	scripts/fuzz.sh

# The example appliance: `mkimage --profile appliances/jumphost` into out/appliance/jumphost.img.
# It trusts Alpine's keys (from the minirootfs fixture) and the project's build key (the lbu
# package of out/repo); the medium and overlay keys are made in out/keys on first use.
APPLIANCE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
appliance: deps all
	rm -rf $(OUT)/trusted-keys && mkdir -p $(OUT)/trusted-keys $(OUT)/appliance
	tar xzf $(SHARED_DIR)/fixtures/alpine-minirootfs-3.20.3-x86_64.tar.gz -C $(OUT)/trusted-keys \
	    --strip-components=4 ./etc/apk/keys
	cp $(OUT)/keys/project-build.rsa.pub $(OUT)/trusted-keys/
	SOURCE_DATE_EPOCH=$(APPLIANCE_EPOCH) $(OUT)/bin/mkimage --profile appliances/jumphost \
	    -o $(OUT)/appliance/jumphost.img $(foreach m,$(ALPINE_MIRROR),--mirror $(m)) --mirror $(OUT)/repo \
	    --keys-dir $(OUT)/trusted-keys --generate-keys $(OUT)/keys --cache-dir $(OUT)/cache

demo: appliance
	target/$(TARGET)/release/demo jumphost

clean:
	rm -rf out target
