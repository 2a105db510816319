# obolus — see README.md.
GO        ?= go
BIN       := bin/obolus
DEMO_DIR  ?= demo
export CGO_ENABLED := 1

.PHONY: all build demo test test-short bench bench-micro bench-e2e vet fmt clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/obolus

# demo: generate a workload, attribute it into a DuckDB file, print per-user
# results, coverage and the score against ground truth. No Databricks, no Kafka.
demo: build
	rm -rf $(DEMO_DIR)
	$(BIN) gen --out $(DEMO_DIR)
	$(BIN) batch --config $(DEMO_DIR)/obolus.yaml
	$(BIN) summary --config $(DEMO_DIR)/obolus.yaml
	$(BIN) score --config $(DEMO_DIR)/obolus.yaml --truth $(DEMO_DIR)/ground_truth.jsonl

test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

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

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin $(DEMO_DIR)
