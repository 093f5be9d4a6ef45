# Kiln's make targets. Everything needs only Go; `make test` is what CI runs.
GO      ?= go
BIN     ?= bin/kiln
STATICCHECK_VERSION := v0.8.2

.PHONY: build run test bench lint fuzz clean

build:
	$(GO) build -o $(BIN) ./cmd/kiln

## run: build kiln and run it on the bundled example DAGs (Ctrl-C stops it).
run: build
	$(BIN) dags validate examples/dags
	$(BIN) standalone --dags examples/dags --data .kiln

## test: vet, then every test with the race detector on.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

## bench: the performance targets the issues name (see docs/performance.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./dag/... ./store/
	$(GO) test -run '^$$' -bench 'Chain100|Independent1000' -benchtime 5x -count=1 ./scheduler/
	KILN_BENCH=1 $(GO) test -run 'TestStandaloneMemory' -count=1 -v ./scheduler/ | grep -E 'memory_test|^(ok|FAIL|---)' 

## lint: go vet and staticcheck.
lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## fuzz: fuzz the DAG loader for a while (FUZZTIME=5m make fuzz).
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./dag/

clean:
	rm -rf bin
