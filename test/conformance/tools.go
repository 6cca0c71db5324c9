//go:build tools

// Package conformance holds the CRI conformance harness (hack/conformance.sh,
// `make conformance`). This file is never built: its imports keep the
// modules critest needs in go.mod and go.sum, so `go mod tidy` does not drop
// them. critest is a test binary (cmd/critest has only a _test.go file) and
// cannot be imported, so its imports are listed instead, and the ginkgo CLI,
// which critest -parallel runs:
//
//	go test -c -o bin/critest sigs.k8s.io/cri-tools/cmd/critest
package conformance

import (
	_ "github.com/onsi/ginkgo/v2"
	_ "github.com/onsi/ginkgo/v2/ginkgo"
	_ "github.com/onsi/ginkgo/v2/types"
	_ "github.com/onsi/gomega"
	_ "sigs.k8s.io/cri-tools/pkg/benchmark"
	_ "sigs.k8s.io/cri-tools/pkg/common"
	_ "sigs.k8s.io/cri-tools/pkg/framework"
	_ "sigs.k8s.io/cri-tools/pkg/validate"
	_ "sigs.k8s.io/cri-tools/pkg/version"
)
