# ClusterKit monorepo. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

GO ?= go
# Every Go module of the workspace (see go.work).
MODULES := $(shell sed -n 's|^[[:space:]]*\./\([^[:space:]]*\).*|\1|p; s|^use \./\([^[:space:]]*\)|\1|p' go.work | sort -u)
# Extra flags for `go test`, e.g. TESTFLAGS='-run TestJoin -v'.
TESTFLAGS ?=
STATICCHECK_VERSION ?= v0.8.2

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

# The compose command: Compose v2 where it exists, else the standalone
# docker-compose 1.29. compose.yaml uses only what both understand.
DOCKER_COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
export DOCKER_COMPOSE
# The clusters `make up` starts: any of sync async server-side.
STRATEGIES ?= sync async server-side
export STRATEGIES

.PHONY: up
up: ## build the images, start the 10-node clusters, Prometheus and Grafana, wait until healthy (STRATEGIES=sync for one)
	@bash scripts/stack.sh up

.PHONY: up-secure
up-secure: ## the kv-sync cluster secured (cluster token, mutual TLS; compose.secure.yaml) with Prometheus scraping it over HTTPS; makes the certificates and token in CERTS_DIR if missing
	@SECURE=1 STRATEGIES=sync bash scripts/stack.sh up

.PHONY: down
down: ## remove the compose stack, secured or not: containers, network and volumes
	@bash scripts/stack.sh down

.PHONY: status
status: ## where the running stack is: clusters, leaders, Prometheus, Grafana
	@bash scripts/stack.sh status

.PHONY: images
images: ## static binaries into FROM scratch images (clusterkit/kv-sync:dev, ...); pulls nothing
	@bash scripts/stack.sh images

.PHONY: observability-images
observability-images: ## a Prometheus image from Debian's package when the official one is absent
	@bash scripts/stack.sh prometheus-image >/dev/null

.PHONY: test
test: tidy-check ## every module's tests with -race, each on its own (GOWORK=off), the compose end-to-end test included
	@for m in $(MODULES); do echo "== test $$m (GOWORK=off)"; (cd $$m && GOWORK=off $(GO) test -race -count=1 -timeout 20m $(TESTFLAGS) ./...); done

# make starter: which service to copy (sync, async, server-side), where to,
# and the module path of the copy.
STRATEGY ?=
DEST ?=
MODULE ?=

.PHONY: starter
starter: ## copy a service as the start of your own system: STRATEGY=sync|async|server-side DEST=../my-kv MODULE=example.com/my-kv
	@cd tools && GOWORK=off $(GO) run ./starter -repo '$(CURDIR)' -strategy '$(STRATEGY)' -dest '$(if $(DEST),$(abspath $(DEST)))' -module '$(MODULE)'

.PHONY: test-starter
test-starter: ## make a starter of each service in a temporary directory and run its whole test suite there with -race
	@cd tools && GOWORK=off $(GO) test -count=1 -v -timeout 60m -run '^TestCopiesBuildAndPass$$' ./starter -args -full

# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 30s

.PHONY: fuzz
fuzz: ## run every fuzz target with -fuzz for FUZZTIME each, one at a time (FUZZTIME=5m); failing inputs land in testdata/fuzz
	@for m in $(MODULES); do \
		for file in $$(cd $$m && grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
			dir=$$(dirname $$file); \
			for f in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$m/$$file); do \
				echo "== fuzz $$m/$${dir#./} $$f for $(FUZZTIME)"; \
				(cd $$m && GOWORK=off $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$dir); \
			done; \
		done; \
	done

# The fault suite's settings (faults/suite_test.go lists them all).
FAULTS_SEED ?= $(shell date +%s)
FAULTS_COUNT ?= 11

.PHONY: test-faults
test-faults: ## the fault suite at length: every fault kind against every service, a new seed each run (needs root); the table lands in faults/report.txt
	@cd faults && FAULTS_SEED=$(FAULTS_SEED) FAULTS_COUNT=$(FAULTS_COUNT) FAULTS_REPORT=$(CURDIR)/faults/report.txt \
		GOWORK=off $(GO) test -count=1 -v -timeout 60m -run 'TestFaults$$' $(TESTFLAGS) .

.PHONY: test-e2e
test-e2e: ## only the compose end-to-end test (needs Docker)
	@cd e2e && GOWORK=off $(GO) test -count=1 -v -timeout 20m ./...

.PHONY: build
build: ## build every module in the workspace and on its own (GOWORK=off), keeping no binaries
	@for m in $(MODULES); do echo "== build $$m"; (cd $$m && $(GO) build -o /dev/null ./... && GOWORK=off $(GO) build -o /dev/null ./... && GOWORK=off $(GO) vet ./...); done

.PHONY: tidy-check
tidy-check: ## fail if a go.mod or go.sum is not tidy
	@for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) mod tidy -diff) || { echo "$$m: go.mod/go.sum not tidy: run 'go mod tidy' in $$m"; exit 1; }; done

.PHONY: lint
lint: ## gofmt, go vet and staticcheck on every module
	@unformatted=$$(gofmt -l $(MODULES)); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	@for m in $(MODULES); do echo "== lint $$m"; (cd $$m && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...); done

# The deployable binaries: static, so that they run in FROM scratch images.
SERVICES := kv-sync kv-async kv-server-side
LOADTEST_FLAGS ?=

# The nodes `make certs` issues certificates for: every node of the
# compose stack.
CERT_NODES ?= $(shell for s in kv-sync kv-async kv-server-side; do for i in 1 2 3 4 5 6 7 8 9 10; do printf '%s-%s,' $$s $$i; done; done)
# Where `make certs` writes, and where the secured stack (make up-secure)
# takes its certificates and its token file (cluster-token).
CERTS_DIR ?= $(CURDIR)/certs
export CERTS_DIR

.PHONY: certs
certs: ## a development CA and a certificate per compose node in CERTS_DIR, certs/ by default (CERT_NODES=a,b to choose; the CA is kept)
	@dir=$(abspath $(CERTS_DIR)); cd clusterkit && GOWORK=off $(GO) run ./cmd/ckcerts -dir "$$dir" -nodes '$(CERT_NODES)'

.PHONY: bins
bins: ## build static binaries of the services, the load generator and ckctl into bin/
	@mkdir -p bin
	@for s in $(SERVICES); do (cd services/$$s && CGO_ENABLED=0 GOWORK=off $(GO) build -trimpath -o ../../bin/$$s .); done
	@cd loadtest && CGO_ENABLED=0 GOWORK=off $(GO) build -trimpath -o ../bin/loadtest .
	@cd clusterkit && CGO_ENABLED=0 GOWORK=off $(GO) build -trimpath -o ../bin/ckctl ./cmd/ckctl

.PHONY: loadtest
loadtest: bins ## compare the strategies: on the running stack if any, else on local 3-node clusters (LOADTEST_FLAGS='-rounds 5')
	@running=$$(bash scripts/stack.sh running 2>/dev/null || true); \
	if [ -n "$$running" ]; then \
		bash scripts/stack.sh loadtest $(LOADTEST_FLAGS); \
	else \
		echo "mode: no stack is running: local 3-node clusters of processes (make up first to measure the 10-node clusters)"; \
		./bin/loadtest -bin bin $(LOADTEST_FLAGS); \
	fi

.PHONY: bench
bench: ## run the benchmarks of every module (BENCH=regexp to choose)
	@for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) test -run '^$$' -bench '$(or $(BENCH),.)' -benchmem ./...); done
