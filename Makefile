# ChainDock. `make help` lists the targets.

GO              ?= go
BIN             := $(CURDIR)/bin
COMETBFT_VERSION := v0.38.26
GETH_VERSION    := v1.13.15
VERSION         ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS         := -X github.com/chaindock/chaindock/internal/version.Version=$(VERSION)
DATA_DIR        ?= $(HOME)/.chaindock
TEST_FLAGS      ?= -timeout 40m -count=1

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*##/ {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: $(BIN)/cometbft $(BIN)/geth ## Build bin/chaindock, its node shim, application and Fabric chaincode server, and install the pinned cometbft and geth into bin/
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/chaindock ./cmd/chaindock
	$(GO) build -o $(BIN)/chaindock-node-shim ./cmd/chaindock-node-shim
	$(GO) build -o $(BIN)/chaindock-app ./cmd/chaindock-app
	$(GO) build -o $(BIN)/chaindock-chaincode ./cmd/chaindock-chaincode

# The node binary, pinned; the stamp makes a version change reinstall it.
$(BIN)/cometbft: $(BIN)/.cometbft-$(COMETBFT_VERSION)
$(BIN)/.cometbft-$(COMETBFT_VERSION):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install github.com/cometbft/cometbft/cmd/cometbft@$(COMETBFT_VERSION)
	@rm -f $(BIN)/.cometbft-* && touch $@

# geth v1.13.15 is the last release that seals Clique blocks; Go 1.26 links
# it only with -checklinkname=0 (a dependency reaches into the Go runtime by
# go:linkname).
$(BIN)/geth: $(BIN)/.geth-$(GETH_VERSION)
$(BIN)/.geth-$(GETH_VERSION):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install -ldflags=-checklinkname=0 github.com/ethereum/go-ethereum/cmd/geth@$(GETH_VERSION)
	@rm -f $(BIN)/.geth-* && touch $@

.PHONY: run
run: build ## Build, start the server and deploy examples/cometbft-4v.yaml
	DATA_DIR=$(DATA_DIR) ./scripts/run.sh examples/cometbft-4v.yaml

.PHONY: test
# A count, not a duration: Go 1.26's fuzz coordinator can fail a run with
# "context deadline exceeded" at the end of a -fuzztime duration
# (golang/go#75804, fixed in Go 1.27); a count takes no deadline.
FUZZ_TIME ?= 100000x

# solc-js checks that the checked-in Solidity templates' builds are what
# their sources compile to; the Kubernetes runtime and the Helm chart are
# tested against a control plane built from pinned sources (cached outside
# the checkout: the first build takes about 15 minutes).
test: build ## Run every test (unit, store on SQLite and PostgreSQL, runtime, Kubernetes, end to end) and fuzz briefly
	solc_dir="$$(./scripts/solc.sh)" && kube_dir="$$(./scripts/kube-test-bins.sh)" && \
	CHAINDOCK_SOLC_DIR="$$solc_dir" CHAINDOCK_KUBE_BIN_DIR="$$kube_dir" CHAINDOCK_BIN_DIR=$(BIN) \
	./scripts/with-postgres.sh $(GO) test $(TEST_FLAGS) ./...
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeNetwork$$' -fuzztime $(FUZZ_TIME) ./internal/apis
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZ_TIME) ./pkg/aksk

.PHONY: e2e-k8s
e2e-k8s: build ## Run real CometBFT and Ethereum networks in pods on the cluster of KUBECONFIG (the server runs here, outside the cluster)
	@test -n "$(KUBECONFIG)" || { echo "set KUBECONFIG to the kubeconfig of a cluster whose kubelets run containers"; exit 2; }
	CHAINDOCK_E2E_KUBECONFIG="$(KUBECONFIG)" CHAINDOCK_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout 45m -v -run '^TestChainsOnARealCluster$$' ./tests/e2e

.PHONY: bench
bench: build ## Measure deploy, heal, restart, memory, API latency, gateway and explorer (SQLite and PostgreSQL), Ethereum deploy and token transfers, CometBFT scaling, Kubernetes deploy and delete; prints JSON lines; BENCH=nodes|api|app|explorer|ethereum|scale|kubernetes|fabric for one part
	kube_dir="$$(./scripts/kube-test-bins.sh)" && \
	CHAINDOCK_KUBE_BIN_DIR="$$kube_dir" CHAINDOCK_BIN_DIR=$(BIN) ./scripts/with-postgres.sh $(GO) run ./tests/bench $(BENCH)

GOLANGCI_LINT_VERSION := v2.6.2

.PHONY: lint
lint: $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION) ## golangci-lint (the checked-in .golangci.yml) and go vet
	$(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION) run ./...
	$(GO) vet ./...

$(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/golangci-lint $@

.PHONY: kube-test-bins
kube-test-bins: ## Build the pinned kube-apiserver, controller manager, scheduler, etcd, kwok and helm the Kubernetes tests use; prints their directory
	./scripts/kube-test-bins.sh

.PHONY: solc
solc: ## Install solc-js 0.8.26 into the cache (and node and npm, as root, when missing); prints its module directory
	./scripts/solc.sh

.PHONY: contracts
contracts: ## Recompile the Solidity templates into internal/chain/ethereum/templates/build
	node internal/chain/ethereum/templates/compile.js "$$(./scripts/solc.sh)" internal/chain/ethereum/templates/build

.PHONY: clean
clean: ## Remove build outputs
	rm -rf $(BIN)
