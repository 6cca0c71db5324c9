// Command berth runs Kubernetes pods on Docker Engine: `berth serve` is a
// CRI runtime for the kubelet.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/berth-project/berth/internal/cli"
)

func main() {
	if err := cli.NewRoot(os.Stdout, os.Stderr).ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
}
