// Command berth runs Kubernetes pods on Docker Engine: `berth serve` is a
// CRI runtime for the kubelet.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/berth-project/berth/internal/cli"
)

func main() {
	if err := cli.NewRoot(os.Stdout, os.Stderr).ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		var exit *cli.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.Code)
		}
		os.Exit(1)
	}
}
