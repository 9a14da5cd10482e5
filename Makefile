# ec2patch: build, synthesize, test and demo. Every tool a target needs is
# installed by the project's own files: Node tools from tools/package-lock.json,
# Python test tools from test/requirements.txt into .venv, Go modules from go.sum.

ENV        ?= dev
GO         ?= go
PYTHON     ?= python3
CDK_OUT    ?= cdk.out
GOARCH_LAMBDA := arm64
LAMBDAS    := $(notdir $(patsubst %/,%,$(dir $(wildcard lambdas/*/main.go))))
VENV       := .venv
NODE_BIN   := tools/node_modules/.bin
FLEET      ?= test/fleets/demo.json
PLAN       ?=
REPORT     ?= demo-report.json

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := true
export CDK_DISABLE_CLI_TELEMETRY := true
export EC2PATCH_MOTO_SERVER := $(CURDIR)/$(VENV)/bin/moto_server
export EC2PATCH_HOST_LAMBDAS := $(CURDIR)/build/host
export EC2PATCH_CFN_LINT := $(CURDIR)/$(VENV)/bin/cfn-lint
export EC2PATCH_ASL_VALIDATOR := $(CURDIR)/$(NODE_BIN)/asl-validator

.PHONY: all build build-host synth test unit lint-templates demo bench tools clean

all: synth

## tools: Node tools (CDK CLI, asl-validator) and the Python test tools.
tools: $(NODE_BIN)/.stamp $(VENV)/.stamp

$(NODE_BIN)/.stamp: tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENV)/.stamp: test/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r test/requirements.txt
	touch $@

## build: every handler as an arm64 `bootstrap` for provided.al2023.
build:
	@for fn in $(LAMBDAS); do \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA) $(GO) build -tags lambda.norpc -trimpath \
	    -ldflags='-s -w' -o build/lambdas/$$fn/bootstrap ./lambdas/$$fn || exit 1; \
	done
	@echo "built $(words $(LAMBDAS)) handlers into build/lambdas/"

## build-host: the same handlers for this machine, run by the emulator's proxy.
build-host:
	@for fn in $(LAMBDAS); do \
	  CGO_ENABLED=0 $(GO) build -tags lambda.norpc -o build/host/$$fn ./lambdas/$$fn || exit 1; \
	done

## synth: the hub and spoke templates for ENV (default dev) into cdk.out/, then the next
## run times of each campaign schedule.
synth: build $(NODE_BIN)/.stamp
	$(NODE_BIN)/cdk synth --quiet -c env=$(ENV) -o $(CDK_OUT)
	@ls -1 $(CDK_OUT)/*.template.json
	@$(GO) run ./infra/cmd/nextruns -env $(ENV)

## test: everything CI runs: vet, golangci-lint, unit, CDK, template linters
## (cfn-lint, checkov) and the emulator.
test: tools build-host
	$(GO) vet ./...
	$(MAKE) lint-go
	rm -f build/iam-usage.md
	$(GO) test -count=1 -timeout 25m ./...
	@# test/e2e's TestMain measured every role's granted vs used actions.
	@cat build/iam-usage.md
	$(MAKE) fuzz
	$(MAKE) lint-templates
	$(MAKE) lint-checkov

## lint-templates: cfn-lint on every synthesized template of every environment.
lint-templates: build $(NODE_BIN)/.stamp $(VENV)/.stamp
	@for env in $(basename $(notdir $(wildcard params/*.json))); do \
	  $(NODE_BIN)/cdk synth --quiet -c env=$$env -o build/cdk.out.$$env || exit 1; \
	  $(VENV)/bin/cfn-lint -- build/cdk.out.$$env/*.template.json || exit 1; \
	  echo "cfn-lint: $$env templates clean"; \
	done

## fuzz: every fuzz target for FUZZTIME each. A failing input lands in the
## package's testdata/fuzz, where `go test` replays it from then on: keep it.
FUZZTIME ?= 15s
.PHONY: fuzz
fuzz:
	@grep -r --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*' internal lambdas constructs infra test | sort -u | \
	while IFS=: read -r file fn; do \
	  fn=$${fn#func }; pkg=./$$(dirname $$file); \
	  echo "fuzz: $$fn in $$pkg for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

## lint-checkov: checkov (CloudFormation checks) on the templates that
## lint-templates synthesized, with zero failed checks; every skip is in the
## template with its reason (constructs/hub/checkov.go). checkov pins boto3
## and networkx far below moto's and cfn-lint's, so it has a venv of its own.
CHECKOV_VENV := build/checkov-venv
.PHONY: lint-checkov
$(CHECKOV_VENV)/.stamp: test/requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r test/requirements-checkov.txt
	touch $@

lint-checkov: $(CHECKOV_VENV)/.stamp
	@rc=0; for env in $(basename $(notdir $(wildcard params/*.json))); do \
	  ls build/cdk.out.$$env/*.template.json >/dev/null 2>&1 || { echo "no templates for $$env: run make lint-templates"; exit 1; }; \
	  if $(CHECKOV_VENV)/bin/checkov --framework cloudformation --compact --quiet --skip-download \
	    -f build/cdk.out.$$env/*.template.json; then echo "checkov: $$env templates clean"; else rc=1; fi; \
	done; exit $$rc

## lint-go: golangci-lint (pinned, built from the Go module proxy) with .golangci.yml.
GOLANGCI_VERSION := v2.15.0
GOLANGCI := build/bin/golangci-lint
.PHONY: lint-go
$(GOLANGCI)-$(GOLANGCI_VERSION):
	GOBIN=$(CURDIR)/build/bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)
	touch $@

lint-go: $(GOLANGCI)-$(GOLANGCI_VERSION)
	$(GOLANGCI) run ./...

## demo: a whole campaign on the emulator; FLEET, PLAN and REPORT select files.
demo: tools build-host
	$(GO) run ./test/cmd/demo -fleet $(FLEET) $(if $(PLAN),-plan $(PLAN)) -report $(REPORT)

## bench: ec2patch against the seed's design on the emulator (not part of test).
## BENCH_FLAGS passes flags (e.g. -sizes 10 -minutes 10); BENCH_OUT names the JSON.
BENCH_OUT   ?= bench.json
BENCH_FLAGS ?=
bench: tools build-host
	BENCH_OUT=$(BENCH_OUT) $(GO) run ./test/cmd/bench $(BENCH_FLAGS)

clean:
	rm -rf build $(CDK_OUT) $(VENV) tools/node_modules
