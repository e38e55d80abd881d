# Sluice — the two commands a newcomer needs are `make dev` and `make test`.
GO      ?= go
BIN     ?= bin/sluice
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/sluicegw/sluice/cmd/sluice/cli.Version=$(VERSION)
PKGS    := ./...

.PHONY: build dev test test-short fuzz bench lint tools clean

## build: the static gateway binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sluice

## dev: embedded Kafka/MQTT/NATS, the quickstart API and a demo page
dev:
	$(GO) run ./cmd/sluice dev

## test: every test, with the race detector, in random order (fuzz seeds included)
test:
	$(GO) test -race -shuffle=on -count=1 -timeout 30m $(PKGS)

## test-short: the same without the race detector, for a quick loop
test-short:
	$(GO) test -count=1 $(PKGS)

## fuzz: a short coverage-guided run of every fuzz target (FUZZTIME each)
FUZZTIME ?= 10s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

## bench: the benchmarks recorded in BENCHMARKS.md
bench:
	scripts/bench.sh

## lint: gofmt and go vet
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet $(PKGS)

clean:
	rm -rf bin
