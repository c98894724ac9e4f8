# c10k-server: `make run` serves ./html on :8080, `make test` runs every test.
CARGO ?= cargo
# `make run LISTEN=127.0.0.1:18084 ROOT=/srv/www ARGS="--shards 2"`: every default can be
# overridden, and ARGS come last, so a flag in them overrides an earlier one.
LISTEN ?= 0.0.0.0:8080
ROOT ?= ./html
ARGS ?=

.PHONY: build run test lint fmt clean loadtest loadtest-compare report scaleout models

build:
	$(CARGO) build --release

run: build
	./target/release/c10k-server --listen $(LISTEN) --root $(ROOT) $(ARGS)

# Unit, property and integration tests; every integration test that starts a server runs
# once per backend (for_each_backend! in tests/common).
test:
	$(CARGO) test --workspace --all-targets

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

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
