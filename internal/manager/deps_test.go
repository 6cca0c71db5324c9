package manager

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRuntimeNeutral: the manager drives any CRI runtime, so nothing under
// it may depend on berth's server, its Docker code or a Docker client.
func TestRuntimeNeutral(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	banned := []string{
		"github.com/berth-project/berth/internal/cri",
		"github.com/berth-project/berth/internal/criserver",
		"github.com/berth-project/berth/internal/docker",
		"github.com/berth-project/berth/internal/translate",
		"github.com/moby/",
		"github.com/docker/docker",
		"k8s.io/kubernetes",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, b := range banned {
			if dep == b || strings.HasPrefix(dep, b+"/") || (strings.HasSuffix(b, "/") && strings.HasPrefix(dep, b)) {
				t.Errorf("the manager depends on %s", dep)
			}
		}
	}
}
