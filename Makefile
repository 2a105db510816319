# obolus — see README.md.
GO        ?= go
BIN       := bin/obolus
DEMO_DIR  ?= demo
BENCHTIME ?= 1x
export CGO_ENABLED := 1

.PHONY: all build demo test test-short bench vet fmt clean

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
# against the limit measured in the same run.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 60m ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin $(DEMO_DIR)
