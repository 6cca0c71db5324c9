package cri

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// userOf is the identity of a running container's first process (the
// CRI's ContainerStatus.user), read from /proc/<pid>/status: Docker keeps
// no record of the groups it resolved. A container that is not running
// has none.
func userOf(st *container.State) *runtimeapi.ContainerUser {
	if st == nil || !st.Running || st.Pid <= 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/status")
	if err != nil {
		return nil
	}
	return parseProcUser(b)
}

// parseProcUser reads the real uid and gid and the supplementary groups
// of a /proc/<pid>/status.
func parseProcUser(status []byte) *runtimeapi.ContainerUser {
	u := &runtimeapi.LinuxContainerUser{}
	var haveUID, haveGID bool
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		switch key {
		case "Uid":
			if len(f) > 0 {
				u.Uid, haveUID = atoi64(f[0])
			}
		case "Gid":
			if len(f) > 0 {
				u.Gid, haveGID = atoi64(f[0])
			}
		case "Groups":
			for _, g := range f {
				if n, ok := atoi64(g); ok {
					u.SupplementalGroups = append(u.SupplementalGroups, n)
				}
			}
		}
	}
	if !haveUID || !haveGID {
		return nil
	}
	return &runtimeapi.ContainerUser{Linux: u}
}

func atoi64(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
