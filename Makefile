# image-proxy — the two commands a newcomer needs are `make run` and `make test`.
# Both install missing Debian packages when run as root and otherwise say
# exactly what to install.

SHELL := /bin/bash
BIN := ./image-proxy
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GO_PACKAGES := $(shell go list ./... 2>/dev/null | grep -v /internal/vips)

# What building and running needs: libvips and its headers, pkg-config, a C
# compiler for cgo, and CA certificates so `go build` can download modules
# (minimal Debian images have none: x509 "certificate signed by unknown
# authority"). git is optional: without it VERSION is "dev" and go build
# leaves out VCS stamping.
RUN_PACKAGES := libvips-dev pkg-config gcc ca-certificates
# What the test suite adds: promtool and prometheus (deploy checks, e2e), curl (e2e),
# node (runs the README's JavaScript signing example against the Go signer),
# chromium (the /docs page is loaded headless in proxy's TestDocsPageInBrowser),
# varnish and varnish-modules (TestVarnishPurgesEveryVariantOfOnePhoto runs
# deploy/varnish/image-proxy.vcl in a real varnishd with vmod_xkey).
TEST_PACKAGES := $(RUN_PACKAGES) prometheus curl nodejs chromium varnish varnish-modules
# What benchmarks add: wrk for HTTP load, jemalloc for the allocator comparison,
# libvips-tools (vips, vipsheader) to make and check the benchmark sources.
BENCH_PACKAGES := $(TEST_PACKAGES) wrk libjemalloc2 libvips-tools

define ensure_packages
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	  else \
	    echo "missing Debian packages:$$missing"; \
	    echo "install them with: sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	fi
	@command -v go >/dev/null || { echo "Go 1.26 is required: https://go.dev/dl/"; exit 1; }
endef

# The MinIO server the S3 tests run against, built from source with the Go
# toolchain (pinned; `go version -m` on the binary names the module version).
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_BIN_DIR = $(shell go env GOPATH | cut -d: -f1)/bin

# Helm, for the chart's tests (`helm lint`, `helm template`), built from
# source with the Go toolchain at a pinned version like MinIO.
HELM_VERSION := v3.22.0

.PHONY: run test build deps test-deps bench-deps vet fmt-check e2e bench bench-hits bench-s3-hits soak fuzz bindings clean minio otelcol docs-viewer thumbhash-reference helm test-chart chart-schema chart-files kustomize image-check

## run: install what is missing, build, and serve ./data/images on 0.0.0.0:8000
run: build
	MALLOC_ARENA_MAX=2 $(BIN) serve

build: deps
	@echo "building $(BIN): the first build compiles the libvips bindings (cgo) and takes a few minutes; later builds take seconds"
	go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) .

## test: install what is missing and run the whole suite (vet, unit, integration, e2e)
test: test-deps minio otelcol helm vet
	go test -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory test-chart
	$(MAKE) --no-print-directory e2e

deps:
	$(call ensure_packages,$(RUN_PACKAGES))

## minio: install the pinned MinIO server the S3 tests start (kept in GOPATH/bin between runs)
minio:
	@command -v go >/dev/null || { echo "Go 1.26 is required: https://go.dev/dl/"; exit 1; }
	@bin="$(MINIO_BIN_DIR)/minio"; \
	  have=$$(go version -m "$$bin" 2>/dev/null | awk '$$1 == "mod" && $$2 == "github.com/minio/minio" {print $$3}'); \
	  if [ "$$have" != "$(MINIO_VERSION)" ]; then \
	    echo "installing MinIO server $(MINIO_VERSION) into $(MINIO_BIN_DIR): the first build takes a few minutes"; \
	    GOBIN="$(MINIO_BIN_DIR)" go install github.com/minio/minio@$(MINIO_VERSION) || exit 1; \
	  fi

## otelcol: build the OpenTelemetry Collector the tracing e2e test sends spans to
## (deploy/otelcol: the collector's core OTLP receiver and debug exporter, versions
## pinned in its own go.mod; cached by the Go build cache, so a rebuild takes seconds)
otelcol:
	@command -v go >/dev/null || { echo "Go 1.26 is required: https://go.dev/dl/"; exit 1; }
	@[ -x "$(MINIO_BIN_DIR)/otelcol-image-proxy" ] || echo "building the OpenTelemetry Collector into $(MINIO_BIN_DIR): the first build takes a minute"
	cd deploy/otelcol && go build -trimpath -o "$(MINIO_BIN_DIR)/otelcol-image-proxy" .

test-deps:
	$(call ensure_packages,$(TEST_PACKAGES))

## helm: install the pinned Helm into GOPATH/bin (the chart's tests run it; no cluster needed)
helm:
	@command -v go >/dev/null || { echo "Go 1.26 is required: https://go.dev/dl/"; exit 1; }
	@bin="$(MINIO_BIN_DIR)/helm"; \
	  have=$$(go version -m "$$bin" 2>/dev/null | awk '$$1 == "mod" && $$2 == "helm.sh/helm/v3" {print $$3}'); \
	  if [ "$$have" != "$(HELM_VERSION)" ]; then \
	    echo "installing Helm $(HELM_VERSION) into $(MINIO_BIN_DIR): the first build takes a few minutes"; \
	    GOBIN="$(MINIO_BIN_DIR)" go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION) || exit 1; \
	  fi

## test-chart: the Helm chart's tests (deploy/helm/charttest, its own Go module): lint,
## template over a table of values, strict decoding, schema, Kustomize tree
test-chart: helm
	cd deploy/helm/charttest && go vet ./... && HELM="$(MINIO_BIN_DIR)/helm" go test -count=1 ./...

## chart-schema: regenerate the chart's values.schema.json settings and deploy/helm/settings.json from the code
chart-schema: deps
	go test -count=1 -run '^TestChartSchema$$' . -args -update-chart

## chart-files: copy the alert rules and the Grafana dashboard into the chart (a test keeps them equal)
chart-files:
	cp deploy/alerts.yml deploy/helm/image-proxy/files/alerts.yml
	cp deploy/grafana/image-proxy.json deploy/helm/image-proxy/files/image-proxy.json

## kustomize: render deploy/kustomize (base + production overlay) from the chart
kustomize: helm
	cd deploy/helm/charttest && HELM="$(MINIO_BIN_DIR)/helm" go run ./cmd/render-kustomize

## image-check: build the image and run it as the chart does (needs a Docker engine; not part of make test)
image-check:
	bash deploy/image/check-image.sh

bench-deps:
	$(call ensure_packages,$(BENCH_PACKAGES))

vet: fmt-check
	go vet $(GO_PACKAGES)

# Every .go file on disk, tracked or not and with or without git, except
# generated code (vipsgen's output is not gofmt-clean and is not ours to edit).
# No files found is a failure: an empty list would pass silently.
fmt-check:
	@files=$$(find . -name '*.go' -not -path './.git/*' -exec grep -L '^// Code generated .* DO NOT EDIT' {} +); \
	  if [ -z "$$files" ]; then echo "fmt-check: no Go files found under $$PWD"; exit 1; fi; \
	  bad=$$(gofmt -l $$files) || exit 1; \
	  if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi

## e2e: a real Prometheus scraping a real image-proxy
e2e: test-deps
	bash deploy/e2e.sh

## bench: Go benchmarks and wrk load against the real binary; writes docs/benchmarks.md
bench: bench-deps minio
	bash docs/bench/run.sh

## bench-hits: only the cache hits against the ceiling (a few minutes); rewrites that section of docs/benchmarks.md
bench-hits: bench-deps
	bash docs/bench/hits.sh

## bench-s3-hits: memory hits of an S3 original (MinIO on loopback) against a local one
bench-s3-hits: bench-deps minio
	bash docs/bench/s3-hits.sh

## soak: 10 minutes of mixed traffic, RSS sampled into docs/soak.md
soak: bench-deps
	bash docs/bench/soak.sh

## fuzz: run every fuzz target for FUZZTIME each (default 1m)
FUZZTIME ?= 1m
fuzz: deps
	go test ./request -run '^$$' -fuzz '^FuzzParseRequest$$' -fuzztime $(FUZZTIME)
	go test ./request -run '^$$' -fuzz '^FuzzRawQuery$$' -fuzztime $(FUZZTIME)
	go test ./request -run '^$$' -fuzz '^FuzzResolvePath$$' -fuzztime $(FUZZTIME)
	go test ./transform -run '^$$' -fuzz '^FuzzSniff$$' -fuzztime $(FUZZTIME)
	go test ./proxy -run '^$$' -fuzz '^FuzzParseRange$$' -fuzztime $(FUZZTIME)
	go test ./proxy -run '^$$' -fuzz '^FuzzConditional$$' -fuzztime $(FUZZTIME)
	go test ./transform -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZTIME)
	go test ./request -run '^$$' -fuzz '^FuzzCanonical$$' -fuzztime $(FUZZTIME)
	go test ./request -run '^$$' -fuzz '^FuzzURLRoundTrip$$' -fuzztime $(FUZZTIME)
	go test ./warm -run '^$$' -fuzz '^FuzzParseWarmList$$' -fuzztime $(FUZZTIME)
	go test ./request -run '^$$' -fuzz '^FuzzParsePresets$$' -fuzztime $(FUZZTIME)
	go test ./request -run '^$$' -fuzz '^FuzzVerifySignature$$' -fuzztime $(FUZZTIME)
	go test ./proxy -run '^$$' -fuzz '^FuzzParseBulk$$' -fuzztime $(FUZZTIME)
	go test ./proxy -run '^$$' -fuzz '^FuzzParseRBulk$$' -fuzztime $(FUZZTIME)
	go test ./apidocs -run '^$$' -fuzz '^FuzzReplaceAt$$' -fuzztime $(FUZZTIME)
	go test ./events -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	go test ./request -run '^$$' -fuzz '^FuzzPlainPath$$' -fuzztime $(FUZZTIME)
	go test ./request -run '^$$' -fuzz '^FuzzParseFocus$$' -fuzztime $(FUZZTIME)
	go test ./request -run '^$$' -fuzz '^FuzzShapeQuery$$' -fuzztime $(FUZZTIME)
	go test ./imageformat -run '^$$' -fuzz '^FuzzParseBackground$$' -fuzztime $(FUZZTIME)
	go test ./request -run '^$$' -fuzz '^FuzzWidthHint$$' -fuzztime $(FUZZTIME)
	go test ./placeholder -run '^$$' -fuzz '^FuzzPlaceholders$$' -fuzztime $(FUZZTIME)

# ThumbHash's reference implementation (the thumbhash npm package), pinned
# by version and integrity, vendored for the tests that check our encoder
# byte for byte and decode its hashes (internal/testsupport/thumbhashref).
THUMBHASH_VERSION := 0.1.1
THUMBHASH_INTEGRITY := sha512-kH5pKeIIBPQXAOni2AiY/Cu/NKdkFREdpH+TLdM0g6WA7RriCv0kPLgP731ady67MhTAqrVG/4mnEeibVuCJcg==

## thumbhash-reference: vendor the pinned ThumbHash reference into internal/testsupport/thumbhashref (commit the result)
thumbhash-reference:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  curl -fsSL -o "$$tmp/th.tgz" "https://registry.npmjs.org/thumbhash/-/thumbhash-$(THUMBHASH_VERSION).tgz" && \
	  got="sha512-$$(openssl dgst -sha512 -binary "$$tmp/th.tgz" | base64 -w0)" && \
	  if [ "$$got" != "$(THUMBHASH_INTEGRITY)" ]; then echo "thumbhash $(THUMBHASH_VERSION): integrity $$got, want $(THUMBHASH_INTEGRITY)"; exit 1; fi && \
	  tar -xzf "$$tmp/th.tgz" -C "$$tmp" package/thumbhash.js package/package.json && \
	  cp "$$tmp/package/thumbhash.js" "$$tmp/package/package.json" internal/testsupport/thumbhashref/ && \
	  echo "thumbhash $(THUMBHASH_VERSION) vendored into internal/testsupport/thumbhashref/"

# The /docs viewer: Redoc's standalone bundle from the npm registry, pinned
# by version and by the tarball's integrity (the registry's dist.integrity),
# committed under apidocs/docs/ so builds need no network.
REDOC_VERSION := 2.5.0
REDOC_INTEGRITY := sha512-NpYsOZ1PD9qFdjbLVBZJWptqE+4Y6TkUuvEOqPUmoH7AKOmPcE+hYjotLxQNTqVoWL4z0T2uxILmcc8JGDci+Q==

## docs-viewer: vendor the pinned Redoc bundle into apidocs/docs/ (commit the result)
docs-viewer:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  curl -fsSL -o "$$tmp/redoc.tgz" "https://registry.npmjs.org/redoc/-/redoc-$(REDOC_VERSION).tgz" && \
	  got="sha512-$$(openssl dgst -sha512 -binary "$$tmp/redoc.tgz" | base64 -w0)" && \
	  if [ "$$got" != "$(REDOC_INTEGRITY)" ]; then echo "redoc $(REDOC_VERSION): integrity $$got, want $(REDOC_INTEGRITY)"; exit 1; fi && \
	  tar -xzf "$$tmp/redoc.tgz" -C "$$tmp" package/LICENSE package/bundles/redoc.standalone.js package/bundles/redoc.standalone.js.LICENSE.txt && \
	  cp "$$tmp/package/bundles/redoc.standalone.js" apidocs/docs/redoc.standalone.js && \
	  cp "$$tmp/package/bundles/redoc.standalone.js.LICENSE.txt" apidocs/docs/redoc.standalone.js.LICENSE.txt && \
	  cp "$$tmp/package/LICENSE" apidocs/docs/LICENSE.redoc && \
	  echo "redoc $(REDOC_VERSION) vendored into apidocs/docs/"

## bindings: regenerate the libvips bindings for the installed libvips (vipsgen v1.3.1, pinned in go.mod)
bindings: deps
	rm -rf transform/internal/vips
	go tool vipsgen -out transform/internal/vips

clean:
	rm -f $(BIN)
