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
# space separated (default: the fixture medium in ../shared; see scripts/build-appliance.sh).
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

bench: deps all
	scripts/bench.sh

fuzz:
	scripts/fuzz.sh

# The example appliance (appliances/jumphost) as a bootable vfat image in out/appliance/.
appliance: deps all
	scripts/build-appliance.sh jumphost

demo: deps all
	scripts/demo.sh

clean:
	rm -rf out target
