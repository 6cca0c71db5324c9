package host

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// capabilityNames maps a capability's bit number to its name, for every
// capability Linux defines up to CAP_CHECKPOINT_RESTORE (40).
var capabilityNames = [...]string{
	0:  "CAP_CHOWN",
	1:  "CAP_DAC_OVERRIDE",
	2:  "CAP_DAC_READ_SEARCH",
	3:  "CAP_FOWNER",
	4:  "CAP_FSETID",
	5:  "CAP_KILL",
	6:  "CAP_SETGID",
	7:  "CAP_SETUID",
	8:  "CAP_SETPCAP",
	9:  "CAP_LINUX_IMMUTABLE",
	10: "CAP_NET_BIND_SERVICE",
	11: "CAP_NET_BROADCAST",
	12: "CAP_NET_ADMIN",
	13: "CAP_NET_RAW",
	14: "CAP_IPC_LOCK",
	15: "CAP_IPC_OWNER",
	16: "CAP_SYS_MODULE",
	17: "CAP_SYS_RAWIO",
	18: "CAP_SYS_CHROOT",
	19: "CAP_SYS_PTRACE",
	20: "CAP_SYS_PACCT",
	21: "CAP_SYS_ADMIN",
	22: "CAP_SYS_BOOT",
	23: "CAP_SYS_NICE",
	24: "CAP_SYS_RESOURCE",
	25: "CAP_SYS_TIME",
	26: "CAP_SYS_TTY_CONFIG",
	27: "CAP_MKNOD",
	28: "CAP_LEASE",
	29: "CAP_AUDIT_WRITE",
	30: "CAP_AUDIT_CONTROL",
	31: "CAP_SETFCAP",
	32: "CAP_MAC_OVERRIDE",
	33: "CAP_MAC_ADMIN",
	34: "CAP_SYSLOG",
	35: "CAP_WAKE_ALARM",
	36: "CAP_BLOCK_SUSPEND",
	37: "CAP_AUDIT_READ",
	38: "CAP_PERFMON",
	39: "CAP_BPF",
	40: "CAP_CHECKPOINT_RESTORE",
}

// capSysResource is the bit number of CAP_SYS_RESOURCE.
const capSysResource = 24

// allCapabilities is the mask of every capability in capabilityNames.
const allCapabilities = uint64(1)<<len(capabilityNames) - 1

// capabilitySets are the capability masks of a process, from
// /proc/<pid>/status.
type capabilitySets struct {
	Bounding  uint64
	Effective uint64
}

// parseStatus reads the CapBnd and CapEff lines of a /proc/<pid>/status file.
func parseStatus(data []byte) (capabilitySets, error) {
	var sets capabilitySets
	var haveBnd, haveEff bool
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch key {
		case "CapBnd":
			dst, haveBnd = &sets.Bounding, true
		case "CapEff":
			dst, haveEff = &sets.Effective, true
		default:
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64)
		if err != nil {
			return capabilitySets{}, fmt.Errorf("parse %s %q: %w", key, strings.TrimSpace(value), err)
		}
		*dst = mask
	}
	if err := sc.Err(); err != nil {
		return capabilitySets{}, err
	}
	if !haveBnd || !haveEff {
		return capabilitySets{}, fmt.Errorf("no CapBnd or CapEff line")
	}
	return sets, nil
}

// capabilityList returns the names of the capabilities set in mask, in bit
// order. Bits above the last capability known here are ignored.
func capabilityList(mask uint64) []string {
	names := []string{}
	for bit, name := range capabilityNames {
		if mask&(1<<bit) != 0 {
			names = append(names, name)
		}
	}
	return names
}

// missingCapabilities returns the known capabilities not in have, in bit
// order.
func missingCapabilities(have []string) []string {
	set := make(map[string]bool, len(have))
	for _, c := range have {
		set[c] = true
	}
	var missing []string
	for _, name := range capabilityNames {
		if !set[name] {
			missing = append(missing, name)
		}
	}
	return missing
}
