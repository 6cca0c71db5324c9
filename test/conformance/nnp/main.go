// Command nnp stands in for the program of registry.k8s.io/e2e-test-images/nonewprivs
// (hack/conformance-images.sh installs it setuid root): it prints its effective
// uid, which critest's NoNewPrivs specs read from the container's log.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
