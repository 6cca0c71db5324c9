package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestFeaturesProcessConfig checks env, working_dir, tty and what command
// and args mean against an image with an ENTRYPOINT and a CMD.
func TestFeaturesProcessConfig(t *testing.T) {
	image := fmt.Sprintf("berth.local/it-entrypoint:%d", time.Now().UnixNano())
	buildImage(t, image, "FROM "+busybox+"\nENV FROM_IMAGE=image-value\nENTRYPOINT [\"echo\", \"entry\"]\nCMD [\"image-cmd\"]\n")
	e := newEnv(t)
	pod, podID := e.startPod("process", nil)

	bare := func(name string, command, args []string) *runtimeapi.ContainerConfig {
		return &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: image},
			Command:  command, Args: args,
			Linux: &runtimeapi.LinuxContainerConfig{},
		}
	}
	for _, c := range []struct {
		name          string
		command, args []string
		want          string
	}{
		{"image-defaults", nil, nil, "entry image-cmd"},
		// Kubernetes' args replace CMD and keep the ENTRYPOINT.
		{"args-only", nil, []string{"a1", "a2"}, "entry a1 a2"},
		// command replaces ENTRYPOINT and drops the image's CMD.
		{"command-only", []string{"echo", "cmd"}, nil, "cmd"},
		{"command-and-args", []string{"echo", "cmd"}, []string{"x", "y"}, "cmd x y"},
	} {
		st, out := e.runToExit(podID, pod, bare(c.name, c.command, c.args))
		if got := strings.TrimSpace(out); st.ExitCode != 0 || got != c.want {
			t.Errorf("%s: command %q args %q printed %q (exit %d), want %q", c.name, c.command, c.args, got, st.ExitCode, c.want)
		}
	}

	envCfg := bare("env", []string{"sh", "-c", `echo "foo=$FOO"; echo "eq=$WITH_EQ"; echo "empty=${EMPTY-unset}"
echo "image=$FROM_IMAGE"; echo "override=$OVERRIDE"; echo "pwd=$(pwd)"
[ -t 1 ] && echo tty=yes || echo tty=no`}, nil)
	envCfg.Envs = []*runtimeapi.KeyValue{
		{Key: "FOO", Value: []byte("bar baz")}, {Key: "WITH_EQ", Value: []byte("a=b")}, {Key: "EMPTY", Value: []byte("")},
		{Key: "OVERRIDE", Value: []byte("first")}, {Key: "OVERRIDE", Value: []byte("last")},
	}
	envCfg.WorkingDir = "/var/made/by/runtime"
	st, out := e.runToExit(podID, pod, envCfg)
	kv := keyValues(out)
	for k, want := range map[string]string{
		"foo": "bar baz", "eq": "a=b", "empty": "", "image": "image-value", "override": "last",
		"pwd": "/var/made/by/runtime", "tty": "no",
	} {
		if kv[k] != want {
			t.Errorf("env container: %s = %q, want %q (exit %d)\n%s", k, kv[k], want, st.ExitCode, out)
		}
	}

	ttyCfg := bare("tty", []string{"sh", "-c", `[ -t 1 ] && echo tty=yes || echo tty=no`}, nil)
	ttyCfg.Tty = true
	id := e.runContainer(podID, pod, ttyCfg)
	e.waitExit(id, 10*time.Second)
	if kv := keyValues(strings.ReplaceAll(e.rawOutput(id), "\r", "")); kv["tty"] != "yes" {
		t.Errorf("tty=true: stdout is no terminal: %q", kv)
	}
}

// TestFeaturesMetadataAndFilters checks that labels and annotations come
// back exactly through every status and list call, and the list filters.
func TestFeaturesMetadataAndFilters(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	// Containers of every berth on this dockerd are listed: a label of
	// this run keeps the checks to this test's objects.
	run := fmt.Sprint(time.Now().UnixNano())
	podLabels := map[string]string{"run": run, "app": "web", "k8s.io/with-slash": "v", "empty": ""}
	podAnnotations := map[string]string{"note": "multi\nline", "unicode": "héllo ☃", "json": `{"a":[1,2]}`, "empty": ""}

	podA, podAID := e.startPod("meta-a", func(c *runtimeapi.PodSandboxConfig) {
		for k, v := range podLabels {
			c.Labels[k] = v
		}
		c.Annotations = podAnnotations
	})
	wantPodLabels := podA.Labels
	podB, podBID := e.startPod("meta-b", func(c *runtimeapi.PodSandboxConfig) { c.Labels["run"] = run })

	ctrLabels := map[string]string{"run": run, "app": "web", "io.kubernetes.container.name": "spoof", "empty": ""}
	ctrAnnotations := map[string]string{"io.kubernetes.container.hash": "1234", "multi": "a\nb", "unicode": "ü"}
	runningCfg := containerConfig("running", "sleep 3600")
	runningCfg.Labels, runningCfg.Annotations = ctrLabels, ctrAnnotations
	running := e.runContainer(podAID, podA, runningCfg)

	exitedCfg := containerConfig("exited", "exit 0")
	exitedCfg.Labels = map[string]string{"run": run, "app": "batch"}
	exited := e.runContainer(podAID, podA, exitedCfg)
	e.waitExit(exited, 10*time.Second)

	createdCfg := containerConfig("created", "exit 0")
	createdCfg.Labels = map[string]string{"run": run, "app": "batch"}
	cr, err := e.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podAID, Config: createdCfg, SandboxConfig: podA})
	if err != nil {
		t.Fatal(err)
	}
	created := cr.ContainerId

	otherCfg := containerConfig("other", "sleep 3600")
	otherCfg.Labels = map[string]string{"run": run, "app": "web"}
	other := e.runContainer(podBID, podB, otherCfg)

	// Round trips.
	exact := cmpopts.EquateEmpty()
	st := e.containerStatus(running)
	if d := cmp.Diff(ctrLabels, st.Labels, exact); d != "" {
		t.Errorf("ContainerStatus labels (-want +got):\n%s", d)
	}
	if d := cmp.Diff(ctrAnnotations, st.Annotations, exact); d != "" {
		t.Errorf("ContainerStatus annotations (-want +got):\n%s", d)
	}
	lc, err := e.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{Id: running}})
	if err != nil {
		t.Fatal(err)
	}
	if len(lc.Containers) != 1 {
		t.Fatalf("ListContainers by id %s: %d containers", running, len(lc.Containers))
	}
	if c := lc.Containers[0]; cmp.Diff(ctrLabels, c.Labels, exact) != "" || cmp.Diff(ctrAnnotations, c.Annotations, exact) != "" ||
		c.PodSandboxId != podAID || c.Metadata.GetName() != "running" || c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("ListContainers item = %s, want labels %v annotations %v in pod %s", mustJSON(c), ctrLabels, ctrAnnotations, podAID)
	}
	ps := e.podStatus(podAID)
	if d := cmp.Diff(wantPodLabels, ps.Labels, exact); d != "" {
		t.Errorf("PodSandboxStatus labels (-want +got):\n%s", d)
	}
	if d := cmp.Diff(podAnnotations, ps.Annotations, exact); d != "" {
		t.Errorf("PodSandboxStatus annotations (-want +got):\n%s", d)
	}
	lp, err := e.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{Id: podAID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(lp.Items) != 1 || cmp.Diff(wantPodLabels, lp.Items[0].Labels, exact) != "" || cmp.Diff(podAnnotations, lp.Items[0].Annotations, exact) != "" {
		t.Errorf("ListPodSandbox by id = %s, want one with labels %v annotations %v", mustJSON(lp.Items), wantPodLabels, podAnnotations)
	}

	// Container filters.
	for _, c := range []struct {
		name   string
		filter *runtimeapi.ContainerFilter
		want   []string
	}{
		{"full id", &runtimeapi.ContainerFilter{Id: running}, sorted(running)},
		{"id prefix", &runtimeapi.ContainerFilter{Id: running[:12]}, sorted(running)},
		{"pod", &runtimeapi.ContainerFilter{PodSandboxId: podAID}, sorted(running, exited, created)},
		{"other pod", &runtimeapi.ContainerFilter{PodSandboxId: podBID}, sorted(other)},
		{"running in pod", &runtimeapi.ContainerFilter{PodSandboxId: podAID,
			State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}, sorted(running)},
		{"exited in pod", &runtimeapi.ContainerFilter{PodSandboxId: podAID,
			State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_EXITED}}, sorted(exited)},
		{"created in pod", &runtimeapi.ContainerFilter{PodSandboxId: podAID,
			State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_CREATED}}, sorted(created)},
		{"label", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"run": run, "app": "web"}}, sorted(running, other)},
		{"label and pod", &runtimeapi.ContainerFilter{PodSandboxId: podAID, LabelSelector: map[string]string{"run": run, "app": "batch"}}, sorted(exited, created)},
		{"label, no match", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"run": run, "app": "none"}}, nil},
		{"empty label value", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"run": run, "empty": ""}}, sorted(running)},
	} {
		r, err := e.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: c.filter})
		if err != nil {
			t.Errorf("ListContainers %s: %v", c.name, err)
			continue
		}
		if d := cmp.Diff(c.want, containerIDs(r.Containers), exact); d != "" {
			t.Errorf("ListContainers %s (-want +got):\n%s", c.name, d)
		}
	}

	// Sandbox filters, with pod B stopped.
	if _, err := e.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podBID}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		filter *runtimeapi.PodSandboxFilter
		want   []string
	}{
		{"full id", &runtimeapi.PodSandboxFilter{Id: podAID}, sorted(podAID)},
		{"id prefix", &runtimeapi.PodSandboxFilter{Id: podBID[:12]}, sorted(podBID)},
		{"label", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"run": run}}, sorted(podAID, podBID)},
		{"two labels", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"run": run, "app": "web"}}, sorted(podAID)},
		{"ready", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"run": run},
			State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}}, sorted(podAID)},
		{"not ready", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"run": run},
			State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}}, sorted(podBID)},
	} {
		r, err := e.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: c.filter})
		if err != nil {
			t.Errorf("ListPodSandbox %s: %v", c.name, err)
			continue
		}
		if d := cmp.Diff(c.want, sandboxIDs(r.Items), exact); d != "" {
			t.Errorf("ListPodSandbox %s (-want +got):\n%s", c.name, d)
		}
	}
}
