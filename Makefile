# obolus — see README.md.
GO        ?= go
BIN       := bin/obolus
DEMO_DIR  ?= demo
# GEN_FLAGS are extra obolus gen flags for the demo, e.g. --agent-logs otel.
GEN_FLAGS ?=
# DEMO_PERIOD is the month the demo bills and reports: the workload's.
DEMO_PERIOD ?= 2026-11
export CGO_ENABLED := 1

.PHONY: all build demo lint test test-short stress fuzz bench bench-micro bench-e2e bench-large vet fmt clean image test-image

all: build

build:
	$(GO) build -o $(BIN) ./cmd/obolus

# demo: generate four weeks of workload (November 1-28, so the per-day
# charts have a shape), attribute it into a DuckDB file, print per-user
# results, coverage and the score against ground truth, then bill the month
# (--idle-days: the days without usage get billed hours, and show as such)
# and write the chargeback reports to $(DEMO_DIR)/reports. No Databricks, no Kafka.
demo: build
	rm -rf $(DEMO_DIR)
	$(BIN) gen --out $(DEMO_DIR) --duration 672h $(GEN_FLAGS)
	$(BIN) batch --config $(DEMO_DIR)/obolus.yaml
	$(BIN) summary --config $(DEMO_DIR)/obolus.yaml
	$(BIN) score --config $(DEMO_DIR)/obolus.yaml --truth $(DEMO_DIR)/ground_truth.jsonl
	$(BIN) report gen-billing --config $(DEMO_DIR)/obolus.yaml --period $(DEMO_PERIOD) --idle-days --out $(DEMO_DIR)/bill
	$(BIN) report chargeback --config $(DEMO_DIR)/obolus.yaml --period $(DEMO_PERIOD) --by team,user \
		--billing-usage $(DEMO_DIR)/bill/billing_usage.jsonl --list-prices $(DEMO_DIR)/bill/billing_list_prices.jsonl \
		--format markdown,html,focus-parquet,distribution --out $(DEMO_DIR)/reports

# lint: staticcheck (pinned by the tool directive in go.mod, so `go tool`
# fetches that version; nothing to install) and the import-direction rules of
# internal/archtest. `make test` runs it first.
lint:
	$(GO) tool staticcheck ./...
	$(GO) test -count=1 ./internal/archtest/

test: lint
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

# fuzz: every decoder of outside input for FUZZTIME each, coverage-guided:
# no input may panic, hang, or leave counts that do not reconcile. A failing
# input is written to testdata/fuzz/<target>/ of its package, where plain
# `go test` replays it from then on; the seeds are the f.Add calls. Each new
# interesting input is minimised in at most 100 runs: the default, 60 s per
# input, left the big Parquet inputs no time to fuzz at all.
FUZZTIME ?= 60s
FUZZ_TARGETS := ingest:FuzzDecodeUsage ingest:FuzzReadJSONL ingest:FuzzReadTraceJSONL ingest:FuzzReadOTelSpansJSONL ingest:FuzzReadCSV \
	ingest:FuzzReadParquet ingest/kafka:FuzzDecodeMessage ingest/otlp:FuzzHandler internal/stream:FuzzDecodeRecord enrich:FuzzNormalizeTraceID
fuzz:
	@fail=""; \
	for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; echo "fuzz ./$$pkg $$fn for $(FUZZTIME)"; \
		before=$$(ls $$pkg/testdata/fuzz/$$fn 2>/dev/null | wc -l); \
		out=$$($(GO) test ./$$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x 2>&1); \
		echo "$$out" | tail -4; after=$$(ls $$pkg/testdata/fuzz/$$fn 2>/dev/null | wc -l); \
		if echo "$$out" | grep -q '^ok'; then :; \
		elif [ "$$after" = "$$before" ] && echo "$$out" | grep -q 'context deadline exceeded'; then \
			echo "  (no failing input: Go 1.26's fuzz coordinator reports its own deadline, go.dev/issue/75804; not a finding)"; \
		else fail="$$fail $$fn"; fi; \
	done; \
	if [ -n "$$fail" ]; then echo "fuzz: failures in$$fail (inputs under testdata/fuzz/)"; exit 1; fi; echo "fuzz: no failure"

# stress: the end-to-end stream tests STRESS_RUNS times in a row while every
# CPU is saturated (stress-ng, installed with apt-get when missing and
# possible; otherwise one `yes` per CPU). Prints the pass count; fails on
# any failure. A test that passes idle and fails loaded has found a bug.
STRESS_RUNS ?= 20
STRESS_TESTS := TestStreamMatchesBatch|TestStreamCrashSafety|TestStreamAlertsCrashSafety|TestStreamTwoWorkers|TestStreamKcatInterop
stress:
	@set -u; \
	if ! command -v stress-ng >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng >/dev/null 2>&1 || true; fi; \
	$(GO) test -c -o bin/obolus.test ./cmd/obolus || exit 1; \
	n=$$(nproc); \
	if command -v stress-ng >/dev/null; then stress-ng --cpu $$n --quiet & hog=$$!; echo "hog: stress-ng --cpu $$n"; \
	else (for i in $$(seq $$n); do yes >/dev/null & done; wait) & hog=$$!; echo "hog: $$n x yes"; fi; \
	trap 'kill $$hog 2>/dev/null; pkill -P $$hog 2>/dev/null; pkill -x yes 2>/dev/null' EXIT; \
	pass=0; \
	for i in $$(seq $(STRESS_RUNS)); do \
		if (cd cmd/obolus && ../../bin/obolus.test -test.run '$(STRESS_TESTS)' -test.count 1 -test.timeout 15m > ../../bin/stress-$$i.log 2>&1); \
		then pass=$$((pass+1)); echo "run $$i: pass"; \
		else echo "run $$i: FAIL (bin/stress-$$i.log)"; grep -E '^\s+(stream|kafka).*_test.go|^--- FAIL' bin/stress-$$i.log | head -20; fi; \
	done; \
	echo "stress: $$pass of $(STRESS_RUNS) runs passed under CPU saturation"; \
	[ $$pass = $(STRESS_RUNS) ]

# bench: every hot-path benchmark, each printing its throughput as a ratio
# against the limit measured in the same run (x_… metrics). Micro benchmarks
# run for BENCHTIME_MICRO each; the whole-pipeline ones (5M-row batch, 2M-event
# stream, 1M-row Databricks pull vs pushdown, 1M-row store and report) once.
BENCHTIME_MICRO ?= 1s
MICRO_PKGS := ./enrich ./ingest ./ingest/duckdbtable ./internal/chargeback ./internal/synth ./internal/warehouse ./internal/stream
bench: bench-micro bench-e2e

bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME_MICRO) -timeout 30m $(MICRO_PKGS)

bench-e2e:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x -timeout 90m \
		./internal/batch ./sink/duckdb ./sink/report ./sink/databricks ./internal/dbxrun ./cmd/obolus

# bench-large: the batch benchmark at about 19 million usage rows (2 million
# agent requests), to show memory stays bounded by the chunk and the agent
# index, not the window. Set OBOLUS_BENCH_DIR to keep the workload.
bench-large:
	OBOLUS_BENCH_REQUESTS=2000000 $(GO) test -run '^$$' -bench 'BenchmarkBatch$$' -benchtime 1x -timeout 120m ./internal/batch

# calibration: the expected calibration error of time-window picks, with
# calibrated and with the rule's own confidence, under both picking policies,
# on the four generated workloads of the README's Confidence section.
CAL_DIR ?= bin/calibration
calibration: build
	@set -eu; \
	for w in "quiet:--seed 5 --hot-agents -1 --agent-requests 3000" "normal:--seed 5 --hot-agents -1" \
	         "hot:--seed 5" "shifted:--seed 6 --max-skew 1800ms --tagged-share 0.5"; do \
		name=$${w%%:*}; flags=$${w#*:}; d=$(CAL_DIR)/$$name; rm -rf $$d; \
		$(BIN) gen --out $$d $$flags >/dev/null; \
		for pol in unattributed nearest likely; do for cal in true false; do \
			OBOLUS_MATCH_AMBIGUITY=$$pol OBOLUS_MATCH_CALIBRATE=$$cal $(BIN) batch --config $$d/obolus.yaml --store $$d/$$pol-$$cal.duckdb --log-level warn >/dev/null; \
			ece=$$($(BIN) score --config $$d/obolus.yaml --store $$d/$$pol-$$cal.duckdb --truth $$d/ground_truth.jsonl | sed -n 's/.*expected calibration error //p'); \
			echo "$$name ($$flags) ambiguity=$$pol calibrate=$$cal: ECE $$ece"; \
		done; done; \
	done

# image: the container image (deploy/container/Containerfile, docs/deploy.md
# Container), tagged IMAGE. The binary is built here, stripped (-s -w: the
# symbol table and DWARF, 151 MB to 115 MB), into bin/image/, the whole build
# context: the Containerfile says why there is no build stage. No -trimpath:
# it would recompile every package instead of relinking what make build or
# make test compiled. A binary that needs a glibc symbol newer than bookworm's 2.36
# (built on a newer distribution) is refused: it would not start in the
# image. IMAGE_BUILDER is podman, else docker, whichever is on PATH first;
# set it to choose. Podman builds with chroot isolation, so the one RUN step
# works where containers cannot run (no OCI runtime or cgroups needed).
# IMAGE_BUILD_FLAGS adds flags, e.g. --pull=never.
IMAGE             ?= obolus:latest
IMAGE_BUILDER     ?= $(firstword $(foreach b,podman docker,$(shell command -v $(b) 2>/dev/null)))
IMAGE_BUILD_FLAGS ?=
IMAGE_GLIBC_MAX   := 2.36
image:
	@set -eu; \
	b="$(IMAGE_BUILDER)"; \
	if [ -z "$$b" ] || ! command -v "$$b" >/dev/null; then \
		echo "make image: no image builder: neither podman nor docker is on PATH (Debian: apt-get install podman), or set IMAGE_BUILDER" >&2; exit 1; fi; \
	rm -rf bin/image && mkdir -p bin/image; \
	echo "go build -ldflags '-s -w' -o bin/image/obolus ./cmd/obolus"; \
	$(GO) build -ldflags '-s -w' -o bin/image/obolus ./cmd/obolus; \
	chmod 0755 bin/image/obolus; \
	if ! command -v objdump >/dev/null; then echo "make image: objdump (binutils) missing: glibc version not checked" >&2; need=; \
	else need=$$(objdump -T bin/image/obolus | sed -n 's/.*GLIBC_\([0-9][0-9.]*\).*/\1/p' | sort -uV | tail -1); fi; \
	if [ -n "$$need" ] && [ "$$(printf '%s\n%s\n' "$$need" "$(IMAGE_GLIBC_MAX)" | sort -V | tail -1)" != "$(IMAGE_GLIBC_MAX)" ]; then \
		echo "make image: bin/image/obolus needs GLIBC_$$need, bookworm has $(IMAGE_GLIBC_MAX): build on Debian bookworm (or older)" >&2; exit 1; fi; \
	iso=; case "$$(basename "$$b")" in podman) iso=--isolation=chroot;; esac; \
	set -x; \
	"$$b" build $$iso -f deploy/container/Containerfile -t $(IMAGE) \
		--build-arg VERSION="$$(git describe --tags --always --dirty 2>/dev/null || echo dev)" \
		--build-arg REVISION="$$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
		--build-arg CREATED="$$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		$(IMAGE_BUILD_FLAGS) bin/image

# test-image: build the image from a Debian bookworm root filesystem made
# here (mmdebstrap) and run obolus gen and batch in it as user 65532 with
# chroot (deploy/container/test-image.sh). Needs root, podman and
# mmdebstrap, and a few minutes; skips with a message where they are
# missing. .ci/run runs it after make test; make test does not.
test-image:
	deploy/container/test-image.sh

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin $(DEMO_DIR)
