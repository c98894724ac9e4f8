# c10k-server: `make run` serves ./html on :8080, `make test` runs every test.
CARGO ?= cargo
# `make run LISTEN=127.0.0.1:18084 ROOT=/srv/www ARGS="--shards 2"`: every default can be
# overridden, and ARGS come last, so a flag in them overrides an earlier one.
LISTEN ?= 0.0.0.0:8080
ROOT ?= ./html
ARGS ?=

.PHONY: build run test lint fmt clean install loadtest loadtest-compare report scaleout models fuzz fuzz-build

build:
	$(CARGO) build --release

run: build
	./target/release/c10k-server --listen $(LISTEN) --root $(ROOT) $(ARGS)

# Unit, property and integration tests; every integration test that starts a server runs
# once per backend (for_each_backend! in tests/common). The `fuzzing` feature adds the
# replay of fuzz/corpus through the fuzz targets' bodies (tests/fuzz_corpus.rs).
test:
	$(CARGO) test --workspace --all-targets --features c10k-server/fuzzing

# Load tests (not part of `make test`): both backends, every scenario, one run.
# DURATION=S shortens each scenario (default 10); ONLY=regex picks scenarios.
loadtest:
	$(CARGO) build --release --workspace
	python3 loadtest/run.py

# The same scenarios against nginx too, configured to the same shape.
loadtest-compare:
	$(CARGO) build --release --workspace
	python3 loadtest/run.py --compare

# Chart of the latest load test: loadtest/results/report.svg.
report:
	$(CARGO) build --release -p c10k-load --bin c10k-report
	./target/release/c10k-report loadtest/results/latest.csv loadtest/results/report.svg \
		"c10k-server load test: $$(nproc) CPUs, Linux $$(uname -r)" \
		--shards "$${SHARDS:-$$(nproc)}" --host "$$(hostname)"

# Two c10k-servers behind HAProxy under load, one reloaded, one restarted: no client error passes.
scaleout:
	$(CARGO) build --release --workspace
	python3 deploy/scaleout.py

# The course's server models side by side (c10k-models --model M, nine of them) as N idle
# connections are held, N = 1 to 10,000: models/results/models.md, .json and .svg, ~10 min.
# MODELS="thread epoll" picks models, NS="1 100" the Ns, ACTIVE_S/IDLE_S the seconds per cell.
models:
	$(CARGO) build --release --workspace
	python3 models/sweep.py

# Install the server, c10k-load and c10k-models under PREFIX, the systemd unit (its
# ExecStart naming PREFIX's binary), the logrotate file and the README. DESTDIR stages it
# (packaging, tests); /etc and /lib/systemd are not under PREFIX, as packages lay them out.
PREFIX ?= /usr/local
DESTDIR ?=
UNITDIR ?= /etc/systemd/system
# Where the binaries are taken from (a test installs the debug build, with CARGO=true).
BINARIES ?= target/release
install:
	$(CARGO) build --release --workspace
	install -Dm755 $(BINARIES)/c10k-server $(DESTDIR)$(PREFIX)/bin/c10k-server
	install -Dm755 $(BINARIES)/c10k-load $(DESTDIR)$(PREFIX)/bin/c10k-load
	install -Dm755 $(BINARIES)/c10k-models $(DESTDIR)$(PREFIX)/bin/c10k-models
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/local/bin/c10k-server|$(PREFIX)/bin/c10k-server|' \
		-e 's|/usr/local/share/doc/c10k-server|$(PREFIX)/share/doc/c10k-server|' \
		deploy/c10k-server.service > $(DESTDIR)$(UNITDIR)/c10k-server.service
	chmod 644 $(DESTDIR)$(UNITDIR)/c10k-server.service
	install -Dm644 deploy/c10k-server.logrotate $(DESTDIR)/etc/logrotate.d/c10k-server
	install -Dm644 README.md $(DESTDIR)$(PREFIX)/share/doc/c10k-server/README.md
	install -Dm644 LICENSE-MIT $(DESTDIR)$(PREFIX)/share/doc/c10k-server/LICENSE-MIT
	install -Dm644 LICENSE-APACHE $(DESTDIR)$(PREFIX)/share/doc/c10k-server/LICENSE-APACHE
	@echo "installed under $(DESTDIR)$(PREFIX); then: systemctl daemon-reload && systemctl enable --now c10k-server"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --features c10k-server/fuzzing -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

# Every fuzz target (fuzz/fuzz_targets) for FUZZ_SECONDS each, in turn; FUZZ_TARGETS picks
# some. libFuzzer on stable Rust: the flags below are the coverage instrumentation
# cargo-fuzz asks for without a sanitizer (`-s none`), given as stable -C flags, so neither
# nightly nor cargo-fuzz is needed (`cargo fuzz run -s none T` works too, where installed).
# --target keeps the flags off build scripts and proc macros. New inputs go to
# fuzz/runs/T (git-ignored); the seeds in fuzz/corpus/T are only read. A crash is saved
# in fuzz/artifacts/T/ and fails the run once every target has had its turn; copy it into
# fuzz/corpus/T/ to keep it as a regression test in `make test`.
FUZZ_SECONDS ?= 180
FUZZ_TARGETS ?= parser chunked fields paths conn core
FUZZ_ARGS ?=
FUZZ_HOST := $(shell rustc -vV | sed -n 's/^host: //p')
FUZZ_RUSTFLAGS := --cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
	-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
	-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks

fuzz-build:
	cd fuzz && RUSTFLAGS="$(FUZZ_RUSTFLAGS)" $(CARGO) build --release --target $(FUZZ_HOST) \
		$(addprefix --bin ,$(FUZZ_TARGETS))

fuzz: fuzz-build
	@failed=; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/runs/$$t fuzz/artifacts/$$t; \
		echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
		fuzz/target/$(FUZZ_HOST)/release/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-max_len=8192 -dict=fuzz/http.dict -print_final_stats=1 \
			-artifact_prefix=fuzz/artifacts/$$t/ $(FUZZ_ARGS) fuzz/runs/$$t fuzz/corpus/$$t \
			|| failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then \
		echo "fuzz: crashes in:$$failed; inputs in fuzz/artifacts/<target>/ (replay one:" \
			"fuzz/target/$(FUZZ_HOST)/release/<target> FILE)"; exit 1; \
	fi
