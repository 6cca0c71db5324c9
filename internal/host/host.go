// Package host detects what this machine lets a container have: the
// capability bounding set, the lowest oom_score_adj, AppArmor.
package host

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/berth-project/berth/internal/translate"
)

// The files Detect reads.
const (
	statusFile   = "/proc/self/status"
	oomScoreFile = "/proc/self/oom_score_adj"
	appArmorFile = "/sys/module/apparmor/parameters/enabled"
)

// minOOMScoreAdj is the lowest oom_score_adj the kernel accepts.
const minOOMScoreAdj = -1000

// Detect reads the host's capabilities, oom_score_adj floor and AppArmor
// state for this process.
func Detect() (translate.Host, error) {
	return detect(os.ReadFile)
}

func detect(readFile func(string) ([]byte, error)) (translate.Host, error) {
	status, err := readFile(statusFile)
	if err != nil {
		return translate.Host{}, fmt.Errorf("detect capabilities: %w", err)
	}
	sets, err := parseStatus(status)
	if err != nil {
		return translate.Host{}, fmt.Errorf("detect capabilities: %s: %w", statusFile, err)
	}

	minOOM := minOOMScoreAdj
	if sets.Effective&(1<<capSysResource) == 0 {
		data, err := readFile(oomScoreFile)
		if err != nil {
			return translate.Host{}, fmt.Errorf("detect oom_score_adj: %w", err)
		}
		if minOOM, err = parseOOMScoreAdj(data); err != nil {
			return translate.Host{}, fmt.Errorf("detect oom_score_adj: %s: %w", oomScoreFile, err)
		}
	}

	appArmor, err := readFile(appArmorFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return translate.Host{}, fmt.Errorf("detect apparmor: %w", err)
	}

	return translate.Host{
		Capabilities:    capabilityList(sets.Bounding),
		AllCapabilities: sets.Bounding&allCapabilities == allCapabilities,
		MinOOMScoreAdj:  minOOM,
		AppArmor:        parseAppArmor(appArmor),
	}, nil
}

// parseOOMScoreAdj parses the content of /proc/<pid>/oom_score_adj.
func parseOOMScoreAdj(data []byte) (int, error) {
	v, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, err
	}
	if v < minOOMScoreAdj || v > -minOOMScoreAdj {
		return 0, fmt.Errorf("value %d out of range", v)
	}
	return v, nil
}

// parseAppArmor reports whether the content of
// /sys/module/apparmor/parameters/enabled says AppArmor is on.
func parseAppArmor(data []byte) bool {
	return bytes.HasPrefix(data, []byte("Y"))
}

// Describe summarises h in one line for the start-up log, e.g.
// "capabilities: 40 of 41 (missing CAP_SYS_RESOURCE); min oom_score_adj: 0; apparmor: off".
func Describe(h translate.Host) string {
	var b strings.Builder
	fmt.Fprintf(&b, "capabilities: %d of %d", len(h.Capabilities), len(capabilityNames))
	if missing := missingCapabilities(h.Capabilities); len(missing) > 0 {
		fmt.Fprintf(&b, " (missing %s)", strings.Join(missing, ", "))
	}
	fmt.Fprintf(&b, "; min oom_score_adj: %d; apparmor: ", h.MinOOMScoreAdj)
	if h.AppArmor {
		b.WriteString("on")
	} else {
		b.WriteString("off")
	}
	return b.String()
}
