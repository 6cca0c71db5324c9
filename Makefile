# berth: build, local images, tests. `make test` is the test command (and what
# .ci/run runs); it needs root, as the integration tests drive a real dockerd.

# The Go toolchain is in /usr/local/go on these machines, not always on PATH.
export PATH := $(PATH):/usr/local/go/bin
GO ?= go

# test/containerd runs berth run against Debian's containerd (started by
# hack/containerd.sh on a socket and root of its own).
INTEGRATION_PKGS := ./test/integration/... ./test/containerd/... ./internal/network/... \
	./internal/containerlog/... ./internal/streaming/...

.PHONY: build crictl images setup test-unit test-integration test demo clean

## build: the berth binary, bin/berth
build:
	$(GO) build -o bin/berth ./cmd/berth

## crictl: bin/crictl at the cri-tools version pinned in go.mod (a `tool` there)
crictl:
	$(GO) build -ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=$$($(GO) list -m -f '{{.Version}}' sigs.k8s.io/cri-tools)" \
		-o bin/crictl sigs.k8s.io/cri-tools/cmd/crictl

## images: berth.local/pause:3.10 and berth.local/busybox:1.36 (needs a running dockerd)
images:
	bash hack/images.sh

## setup: packages, dockerd, CNI config, images (root; idempotent)
setup:
	bash hack/setup.sh

## test-unit: every package, no daemon needed
test-unit:
	$(GO) test ./...

## test-integration: against the real dockerd and CNI (run setup first)
test-integration:
	BERTH_INTEGRATION=1 $(GO) test -count=1 -p 1 -timeout 20m $(INTEGRATION_PKGS)

## test: setup, then unit, integration and conformance tests, stopping at the
## first failure
test:
	$(MAKE) setup
	$(MAKE) test-unit
	$(MAKE) test-integration
	$(MAKE) conformance

## demo: run berth and a pod through crictl (hack/demo.sh), then a pod
## manifest with berth run
demo: setup build crictl
	bash hack/demo.sh
	bin/berth run --rm examples/hello-pod.yaml

clean:
	rm -rf bin

## conformance: critest (cri-tools as in go.mod) against berth (hack/conformance.sh);
## the last line is "N passed, M failed, K skipped"
.PHONY: conformance conformance-bench
conformance: setup build crictl
	bash hack/conformance.sh

## conformance-bench: critest -benchmark with test/conformance/benchmark.yaml; prints the medians
conformance-bench: setup build crictl
	bash hack/conformance.sh bench
