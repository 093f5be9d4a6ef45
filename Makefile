# Kiln's make targets. Everything needs only Go; `make test` is what CI runs.
GO      ?= go
BIN     ?= bin/kiln

.PHONY: build run example-image test chaos bench lint fuzz proto clean

## build: build bin/kiln. Its version (kiln version, /healthz, the UI footer,
## kiln_build_info) is VERSION: by default what git describe says of the
## checkout; a release sets it, as in make build VERSION=v1.2.0.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS := $(if $(VERSION),-X github.com/kilnhq/kiln/internal/buildinfo.version=$(VERSION))
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kiln

## run: build kiln and run it on the bundled example DAGs (Ctrl-C stops it).
## A DAG file with errors does not stop it: the errors are printed, and
## Kiln starts with the DAGs that load, as it would on its own.
run: build
	@$(BIN) dags validate examples/dags || echo "kiln: starting anyway; the DAG files above show as import errors until fixed" >&2
	$(BIN) standalone --dags examples/dags --data .kiln

## example-image: build the image kiln-example/tools:latest on the local
## Docker Engine, for examples/dags/container_report.yaml (examples/image).
## No registry is needed: the image starts FROM scratch with a static
## busybox, which is installed first where we can (root with apt-get).
example-image:
	@sh scripts/docker-test-deps.sh; \
	if [ $$? -eq 3 ]; then echo "example-image: no Docker Engine answers at $${DOCKER_HOST:-unix:///var/run/docker.sock}: start Docker, or set DOCKER_HOST to one" >&2; exit 1; fi
	$(GO) run ./examples/image

## test: lint, then every test with the race detector on. Chromium for the
## browser tests (ui/browsertest) is installed first where we can (root with
## apt-get); wherever it is there, those tests must run, not skip. So must
## the docker stage's tests wherever a Docker Engine answers (busybox-static,
## their images' base, is installed then).
test: lint
	@sh scripts/install-test-deps.sh; \
	if [ $$? -ne 3 ]; then export KILN_REQUIRE_BROWSER=$${KILN_REQUIRE_BROWSER:-1}; fi; \
	sh scripts/docker-test-deps.sh; \
	if [ $$? -ne 3 ]; then export KILN_REQUIRE_DOCKER=$${KILN_REQUIRE_DOCKER:-1}; fi; \
	echo "$(GO) test -race -count=1 ./..."; \
	$(GO) test -race -count=1 ./...

## chaos: the chaos suite (internal/chaos): Kiln as containers on the local
## Docker Engine, built FROM scratch from this tree (no registry): three NATS
## servers, two HA servers and three workers on their own bridge network,
## under killed, stopped and partitioned nodes while 50 runs go on; then it
## checks the runs, their tries, the replicated log and how long each change
## of leader took. Needs a Docker Engine and busybox-static (installed first
## where we can); about four minutes, with the static build. .ci/run runs it
## after make test where an Engine answers. TestChaosHarness, which proves
## the harness itself on a plain server, runs with
## go test -tags chaos -run TestChaosHarness ./internal/chaos/.
chaos:
	@sh scripts/docker-test-deps.sh; \
	if [ $$? -eq 3 ]; then echo "chaos: no Docker Engine answers at $${DOCKER_HOST:-unix:///var/run/docker.sock}: start Docker, or set DOCKER_HOST to one" >&2; exit 1; fi
	$(GO) test -tags chaos -run 'TestChaos$$' -count=1 -v -timeout 10m ./internal/chaos/

## bench: the performance targets the issues name (see docs/performance.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./dag/... ./store/
	$(GO) test -run '^$$' -bench 'Chain100|Independent1000|ChainHops' -benchtime 3x -count=1 ./scheduler/
	$(GO) test -run '^$$' -bench 'Manifest' -benchmem -count=1 ./scheduler/
	$(GO) test -run '^$$' -bench 'Noop' -benchtime 500x -count=1 ./plugins/sdk/
	$(GO) test -run '^$$' -bench 'ContainerFirstLogLine' -benchtime 20x -count=1 ./plugins/docker/
	$(GO) test -run '^$$' -bench 'DockerNoopTask' -benchtime 20x -count=1 ./scheduler/
	$(GO) test -run '^$$' -bench 'MapExpansion' -benchtime 10x -count=1 ./scheduler/
	$(GO) test -run '^$$' -bench 'Map10000' -benchtime 1x -count=1 ./scheduler/
	$(GO) test -run '^$$' -bench 'Grid1000x25|DAGList1000|RunsPage10k|Mapped10k' -benchmem -count=1 ./ui/
	KILN_BENCH=1 $(GO) test -run 'TestStandaloneMemory|TestBackfillKeepsScheduleOnTime' -count=1 -v ./scheduler/ | grep -E 'memory_test|backfill_e2e_test|^(ok|FAIL|---)'

## lint: go vet and staticcheck. staticcheck's version is pinned in go.mod
## as a tool (go get -tool honnef.co/go/tools/cmd/staticcheck@VERSION to
## change it), so it builds from the module cache, offline after the first
## time, unlike `go run ...@version`, which asks the module proxy each time.
lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## fuzz: fuzz the DAG loader for a while (FUZZTIME=5m make fuzz).
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./dag/

## proto: regenerate the stage plugin protocol's Go code (plugins/proto/stagepb)
## from stage.proto. Needs protoc (Debian: apt-get install -y protobuf-compiler);
## installs the pinned Go generators with go install first.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
proto:
	@command -v protoc >/dev/null || { echo "protoc not found: apt-get install -y protobuf-compiler" >&2; exit 1; }
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" $(GO) generate ./plugins/proto

clean:
	rm -rf bin
