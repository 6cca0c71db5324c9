package integration

import (
	"fmt"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestFeaturesExitStatus checks exit codes, reasons and the order of the
// timestamps of exited containers.
func TestFeaturesExitStatus(t *testing.T) {
	e := newEnv(t)
	pod, podID := e.startPod("exit", nil)

	oom := containerConfig("oom", "echo start; exec dd if=/dev/zero of=/dev/null bs=64M count=1")
	oom.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20}

	for _, c := range []struct {
		cfg      *runtimeapi.ContainerConfig
		exitCode int32
		reason   string
	}{
		{containerConfig("zero", "exit 0"), 0, "Completed"},
		{containerConfig("three", "exit 3"), 3, "Error"},
		// dd's 64 MiB buffer is filled from /dev/zero: the kernel kills it
		// in a 16 MiB cgroup.
		{oom, 137, "OOMKilled"},
	} {
		name := c.cfg.Metadata.Name
		st, out := e.runToExit(podID, pod, c.cfg)
		if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != c.exitCode || st.Reason != c.reason {
			t.Errorf("%s: state %v exit code %d reason %q (message %q), want EXITED %d %q; output:\n%s",
				name, st.State, st.ExitCode, st.Reason, st.Message, c.exitCode, c.reason, out)
		}
		// finished >= started: TestFeaturesExitTimestamps.
		if st.CreatedAt == 0 || st.StartedAt < st.CreatedAt || st.FinishedAt < st.CreatedAt {
			t.Errorf("%s: created_at %d started_at %d finished_at %d, want 0 < created <= started, created <= finished",
				name, st.CreatedAt, st.StartedAt, st.FinishedAt)
		}
	}
}

// TestFeaturesExitTimestamps checks created_at <= started_at <= finished_at
// for containers that exit at once, where Docker 20.10 often records the
// exit a moment before its own start time (its StartedAt is stamped after
// runc has started the process). A dozen runs make the race all but
// certain to show.
func TestFeaturesExitTimestamps(t *testing.T) {
	e := newEnv(t)
	pod, podID := e.startPod("stamps", nil)
	bad := 0
	const runs = 12
	for i := range runs {
		st, _ := e.runToExit(podID, pod, containerConfig(fmt.Sprintf("quick%d", i), "exit 0"))
		if st.CreatedAt == 0 || st.StartedAt < st.CreatedAt || st.FinishedAt < st.StartedAt {
			bad++
			t.Logf("quick%d: created_at %d started_at %d finished_at %d (finished - started = %v)",
				i, st.CreatedAt, st.StartedAt, st.FinishedAt, time.Duration(st.FinishedAt-st.StartedAt))
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d exited containers break created_at <= started_at <= finished_at", bad, runs)
	}
}

// TestFeaturesStopTimeout checks that StopContainer waits the timeout for
// a container that ignores SIGTERM, then kills it, and that a container
// that exits on SIGTERM stops at once with its own exit code.
func TestFeaturesStopTimeout(t *testing.T) {
	e := newEnv(t)
	pod, podID := e.startPod("stop", nil)

	for _, c := range []struct {
		name             string
		script           string
		exitCode         int32
		minTime, maxTime time.Duration
	}{
		// PID 1 with SIGTERM ignored: only the SIGKILL after 2 s ends it.
		{"stubborn", `trap '' TERM; echo ready; while :; do sleep 1; done`, 137, 2 * time.Second, 8 * time.Second},
		// wait is interrupted by the trapped signal, so the trap runs at once.
		{"polite", `trap 'exit 0' TERM; echo ready; while :; do sleep 1 & wait $!; done`, 0, 0, 1500 * time.Millisecond},
	} {
		// pid CONTAINER: the shell is the container's PID 1, which gets
		// no signal it has not asked for.
		id := e.runContainer(podID, pod, withPID(containerConfig(c.name, c.script), runtimeapi.NamespaceMode_CONTAINER))
		e.waitOutput(id, "ready", 10*time.Second)
		start := time.Now()
		if _, err := e.rt.StopContainer(e.ctx(), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 2}); err != nil {
			t.Fatalf("%s: StopContainer: %v", c.name, err)
		}
		took := time.Since(start)
		if took < c.minTime || took > c.maxTime {
			t.Errorf("%s: StopContainer with timeout 2 took %v, want between %v and %v", c.name, took, c.minTime, c.maxTime)
		}
		st := e.containerStatus(id)
		if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != c.exitCode {
			t.Errorf("%s: after StopContainer state %v exit code %d, want EXITED %d", c.name, st.State, st.ExitCode, c.exitCode)
		}
	}
}
