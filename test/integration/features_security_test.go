package integration

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// securityScript prints the shell's capabilities, seccomp mode,
// no_new_privs, ids and oom_score_adj, then runs the case's own probe.
const securityScript = `grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/$$/status
echo "uid=$(id -u)"; echo "gid=$(id -g)"; echo "groups=$(id -G)"
echo "oom=$(cat /proc/$$/oom_score_adj)"
`

// denyMkdirProfile allows every syscall but mkdir and mkdirat, which fail
// with EPERM.
const denyMkdirProfile = `{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
}`

// TestFeaturesSecurityContext checks what each security context field does
// inside a running container.
func TestFeaturesSecurityContext(t *testing.T) {
	e := newEnv(t)
	hostCaps := hostBoundingSet(t)
	if hostCaps&(1<<capSysResource) != 0 {
		t.Logf("this host's bounding set has CAP_SYS_RESOURCE: the emulated privileged path is not exercised")
	}
	// "Every capability" can only mean those the host has and dockerd
	// knows: Docker 20.10 cannot grant CAP_PERFMON, CAP_BPF or
	// CAP_CHECKPOINT_RESTORE at all.
	allCaps := dockerGrantable(t, hostCaps)
	if missing := hostCaps &^ allCaps; missing != 0 {
		t.Logf("dockerd cannot grant the host's %v", capList(missing))
	}
	profile := filepath.Join(t.TempDir(), "deny-mkdir.json")
	if err := os.WriteFile(profile, []byte(denyMkdirProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	minOOM := readInt(t, "/proc/self/oom_score_adj")

	pod, podID := e.startPod("sec", nil)

	const mkdirProbe = `mkdir /tmp/probe 2>/dev/null && echo mkdir=ok || echo mkdir=denied`
	const writeRootProbe = `touch /probe 2>/dev/null && echo rootwrite=ok || echo rootwrite=denied`
	caps := func(add, drop []string) *runtimeapi.Capability {
		return &runtimeapi.Capability{AddCapabilities: add, DropCapabilities: drop}
	}
	profileOf := func(typ runtimeapi.SecurityProfile_ProfileType, ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: typ, LocalhostRef: ref}
	}
	type want struct {
		capEff  *uint64
		seccomp string
		nnp     string
		kv      map[string]string
	}
	u64 := func(v uint64) *uint64 { return &v }

	for _, c := range []struct {
		name       string
		privileged bool
		sc         *runtimeapi.LinuxContainerSecurityContext
		res        *runtimeapi.LinuxContainerResources
		probe      string
		want       want
	}{
		// No seccomp asked for: unconfined, as the CRI says.
		{name: "default", probe: mkdirProbe,
			want: want{capEff: u64(dockerDefaultCaps), seccomp: "0", nnp: "0", kv: map[string]string{"uid": "0", "mkdir": "ok"}}},
		{name: "add-net-admin", sc: &runtimeapi.LinuxContainerSecurityContext{Capabilities: caps([]string{"NET_ADMIN"}, nil)},
			want: want{capEff: u64(dockerDefaultCaps | 1<<capNetAdmin)}},
		{name: "drop-all", sc: &runtimeapi.LinuxContainerSecurityContext{Capabilities: caps(nil, []string{"ALL"})},
			want: want{capEff: u64(0)}},
		{name: "drop-all-add-net-bind-service", sc: &runtimeapi.LinuxContainerSecurityContext{Capabilities: caps([]string{"NET_BIND_SERVICE"}, []string{"ALL"})},
			want: want{capEff: u64(1 << capNetBindService)}},
		{name: "add-all", sc: &runtimeapi.LinuxContainerSecurityContext{Capabilities: caps([]string{"ALL"}, nil)},
			want: want{capEff: u64(allCaps), seccomp: "0"}},
		{name: "privileged", privileged: true, sc: &runtimeapi.LinuxContainerSecurityContext{Privileged: true},
			want: want{capEff: u64(allCaps), seccomp: "0"}},
		{name: "seccomp-runtime-default", probe: mkdirProbe,
			sc:   &runtimeapi.LinuxContainerSecurityContext{Seccomp: profileOf(runtimeapi.SecurityProfile_RuntimeDefault, "")},
			want: want{seccomp: "2", kv: map[string]string{"mkdir": "ok"}}},
		{name: "seccomp-unconfined", probe: mkdirProbe,
			sc:   &runtimeapi.LinuxContainerSecurityContext{Seccomp: profileOf(runtimeapi.SecurityProfile_Unconfined, "")},
			want: want{seccomp: "0", kv: map[string]string{"mkdir": "ok"}}},
		{name: "seccomp-localhost", probe: mkdirProbe,
			sc:   &runtimeapi.LinuxContainerSecurityContext{Seccomp: profileOf(runtimeapi.SecurityProfile_Localhost, profile)},
			want: want{seccomp: "2", kv: map[string]string{"mkdir": "denied"}}},
		{name: "no-new-privs", sc: &runtimeapi.LinuxContainerSecurityContext{NoNewPrivs: true},
			want: want{nnp: "1"}},
		{name: "run-as-user-group", sc: &runtimeapi.LinuxContainerSecurityContext{
			RunAsUser: &runtimeapi.Int64Value{Value: 1000}, RunAsGroup: &runtimeapi.Int64Value{Value: 1001}, SupplementalGroups: []int64{2000}},
			// 1001 is also berth's group in the image's /etc/group (Merge).
			want: want{capEff: u64(0), kv: map[string]string{"uid": "1000", "gid": "1001", "groups": "1001 2000"}}},
		{name: "run-as-username", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "berth"},
			want: want{kv: map[string]string{"uid": "1000", "gid": "1000"}}},
		{name: "readonly-rootfs", probe: writeRootProbe, sc: &runtimeapi.LinuxContainerSecurityContext{ReadonlyRootfs: true},
			want: want{kv: map[string]string{"rootwrite": "denied"}}},
		{name: "writable-rootfs", probe: writeRootProbe,
			want: want{kv: map[string]string{"rootwrite": "ok"}}},
		{name: "masked-and-readonly-paths",
			// /proc/kcore is absent on some kernels (this VM's): runc skips it.
			sc: &runtimeapi.LinuxContainerSecurityContext{
				MaskedPaths: []string{"/proc/kcore", "/proc/keys", "/etc/group"}, ReadonlyPaths: []string{"/tmp"}},
			probe: `echo "keys=$(wc -c </proc/keys)"; echo "group=$(wc -c </etc/group)"
touch /tmp/probe 2>/dev/null && echo tmpwrite=ok || echo tmpwrite=denied
touch /home/probe 2>/dev/null && echo homewrite=ok || echo homewrite=denied
for p in /proc/keys /etc/group /tmp /proc/timer_list /proc/sys; do
  grep -q " $p " /proc/self/mountinfo && echo "mounted$p=yes" || echo "mounted$p=no"
done`,
			// Only the paths asked for: none of Docker's defaults
			// (/proc/timer_list masked, /proc/sys read-only).
			want: want{kv: map[string]string{"keys": "0", "group": "0", "tmpwrite": "denied", "homewrite": "ok",
				"mounted/proc/keys": "yes", "mounted/etc/group": "yes", "mounted/tmp": "yes",
				"mounted/proc/timer_list": "no", "mounted/proc/sys": "no"}}},
		{name: "oom-score-adj-below-host-minimum", res: &runtimeapi.LinuxContainerResources{OomScoreAdj: -500},
			want: want{kv: map[string]string{"oom": fmt.Sprint(max(-500, minOOM))}}},
		{name: "oom-score-adj-500", res: &runtimeapi.LinuxContainerResources{OomScoreAdj: 500},
			want: want{kv: map[string]string{"oom": "500"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			se := e.forT(t)
			cfg := containerConfig(c.name, securityScript+c.probe)
			cfg.Linux.SecurityContext = c.sc
			cfg.Linux.Resources = c.res
			p, pID := pod, podID
			if c.privileged {
				// The parent's podConfig, so the parent's cleanup finds it.
				p = e.podConfig("priv")
				p.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}
				pID = se.runPod(p)
			}
			st, out := se.runToExit(pID, p, cfg)
			if st.ExitCode != 0 {
				t.Errorf("exit code %d (reason %s %q)", st.ExitCode, st.Reason, st.Message)
			}
			if c.want.capEff != nil {
				if got := hexField(t, out, "CapEff"); got != *c.want.capEff {
					t.Errorf("CapEff = %#x, want %#x (missing %v, extra %v)", got, *c.want.capEff, capList(*c.want.capEff&^got), capList(got&^*c.want.capEff))
				}
			}
			if got := statusField(out, "Seccomp"); c.want.seccomp != "" && got != c.want.seccomp {
				t.Errorf("Seccomp = %q, want %s", got, c.want.seccomp)
			}
			if got := statusField(out, "NoNewPrivs"); c.want.nnp != "" && got != c.want.nnp {
				t.Errorf("NoNewPrivs = %q, want %s", got, c.want.nnp)
			}
			kv := keyValues(out)
			for _, k := range slices.Sorted(maps.Keys(c.want.kv)) {
				if kv[k] != c.want.kv[k] {
					t.Errorf("%s = %q, want %q", k, kv[k], c.want.kv[k])
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}

// readInt reads a file holding one integer.
func readInt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}
