# Haitao: the two commands a newcomer needs.
#   make run    install what is missing, build the UI and the app, start it on the embedded shop
#   make test   install the test tools too and run every check (see scripts/test.sh)
.PHONY: help run test build ui release package package-test bench bench-signing perf fuzz soak sim bindings fmt lint clean-e2e

SHELL := /bin/bash

# A bare `make` only explains: `run` may install system packages through sudo.
help:
	@echo "Haitao 海淘: the two commands a newcomer needs"
	@echo "  make run      install what is missing (apt, with sudo when not root; npm), build, start the app"
	@echo "  make test     install the test tools too and run every check with a pass/fail summary"
	@echo "Others: build, release, package, package-test, bench, bench-signing, perf, fuzz, soak, sim, bindings, fmt, lint, clean-e2e"
	@echo "(see the comments in the Makefile and README.md)"

run:
	@scripts/bootstrap.sh run
	@$(MAKE) --no-print-directory build
	@scripts/run.sh target/debug/haitao

test:
	@scripts/bootstrap.sh test
	@scripts/test.sh

ui:
	cd ui && npm run --silent build

# The app embeds ui/dist at compile time, so the UI is always built first.
build: ui
	cargo build -p haitao --locked

release: ui
	cargo build -p haitao --release --locked

# The Linux installers (.deb, .rpm) with the Tauri bundler, in target/release/bundle/
# (docs/packaging.md). `package-test` installs the .deb on this machine, starts it, removes it.
# (The UI is built first, here, as for every build: the bundler embeds ui/dist as it is.)
package:
	@scripts/bootstrap.sh package
	@$(MAKE) --no-print-directory ui
	@scripts/package

package-test: package
	@scripts/package-test

# Start-up time, memory and size of the release build (docs/PERFORMANCE.md).
bench: release
	scripts/bench-startup --runs 9 --warm

# crates/alipay beside Alipay's Node SDK and openssl speed rsa2048, on one core (docs/PERFORMANCE.md).
bench-signing:
	scripts/bench-signing

# Every figure of docs/PERFORMANCE.md re-measured in one run, with how each scales (~40 min).
perf:
	scripts/perf $(PERF_ARGS)

# libFuzzer on the protocol parsers, FUZZ_SECONDS per target (needs a nightly toolchain).
FUZZ_SECONDS ?= 180
fuzz:
	scripts/fuzz $(FUZZ_SECONDS)

# The chaos checkout soak (crates/client/examples/soak.rs): concurrent shoppers, injected faults,
# then an audit of every order, the ledger, the caches, the quota and the disk. SOAK_ARGS to change.
SOAK_ARGS ?= --shoppers 24 --checkouts 2000 --seed 1
soak:
	cargo run -p haitao-client --example soak --locked -- $(SOAK_ARGS)

# The deterministic money simulation (crates/sim, docs/simulation.md): seeds on every core, the
# first failing seed printed with its steps. SIM_ARGS: --seeds N, --from N, --minutes M, --seed N.
SIM_ARGS ?= --seeds 2000
sim:
	cargo run -p haitao-sim --release --locked -- $(SIM_ARGS)

# Regenerates ui/src/lib/bindings.ts from the Rust command and wire types.
bindings:
	HAITAO_WRITE_BINDINGS=1 cargo test -p haitao --test bindings --locked

fmt:
	cargo fmt --all
	cd ui && npm run --silent format

lint:
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cd ui && npm run --silent check && npm run --silent lint

clean-e2e:
	rm -rf target/e2e
