package integration

import (
	"fmt"
	"github.com/berth-project/berth/internal/cli"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestRunInitSidecarShared: an init container, a sidecar and two
// containers sharing an emptyDir, restartPolicy Never: the init runs
// first, the sidecar keeps running while the two finish, the pod
// Succeeds and berth run exits 0 with every log line printed.
func TestRunInitSidecarShared(t *testing.T) {
	e := newEnv(t)
	r := e.startRun(`apiVersion: v1
kind: Pod
metadata:
  name: shared
  labels: {test: "{{TEST}}", io.berth.test: "true"}
spec:
  restartPolicy: Never
  volumes:
  - name: work
    emptyDir: {}
  initContainers:
  - name: init
    image: ` + busybox + `
    command: [sh, -c, "echo seeded > /work/seed; echo init done"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: side
    image: ` + busybox + `
    restartPolicy: Always
    command: [sh, -c, "echo side up; while true; do date > /work/side; sleep 0.2; done"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: writer
    image: ` + busybox + `
    command: [sh, -c, "cat /work/seed; echo from-writer > /work/msg"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: reader
    image: ` + busybox + `
    command: [sh, -c, "until [ -e /work/msg ]; do sleep 0.1; done; cat /work/msg; test -s /work/side && echo side-seen"]
    volumeMounts: [{name: work, mountPath: /work, readOnly: true}]
`)
	if err := r.wait(2 * time.Minute); err != nil {
		t.Fatalf("berth run: %v", err)
	}
	out := r.out.String()
	for _, want := range []string{"[init] init done", "[side] side up", "[writer] seeded", "[reader] from-writer", "[reader] side-seen",
		"Started container init", "Started container writer", "pod default/shared: Succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the output", want)
		}
	}
	// The init container ran to its end before any other started.
	if i, s := strings.Index(out, "[init] init done"), strings.Index(out, "Started container side"); i < 0 || s < 0 || i > s {
		t.Errorf("init output at %d, sidecar start at %d: want init first", i, s)
	}
	pod := r.status()
	if pod.Status.Phase != corev1.PodSucceeded {
		t.Errorf("phase %s, want Succeeded", pod.Status.Phase)
	}
	for _, name := range []string{"init", "writer", "reader"} {
		if st := containerStatusOf(pod, name); st.State.Terminated == nil || st.State.Terminated.ExitCode != 0 {
			t.Errorf("%s: %+v, want terminated with 0", name, st.State)
		}
	}
	if st := containerStatusOf(pod, "side"); st.State.Terminated == nil {
		t.Errorf("sidecar after the pod ended: %+v, want terminated", st.State)
	}
}

// TestRunNeverExit3: restartPolicy Never and exit 3: the pod Fails, berth
// run exits non-zero, the container is not restarted.
func TestRunNeverExit3(t *testing.T) {
	e := newEnv(t)
	r := e.startRun(`apiVersion: v1
kind: Pod
metadata: {name: fails, labels: {test: "{{TEST}}", io.berth.test: "true"}}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: ` + busybox + `
    command: [sh, -c, "echo bye; exit 3"]
`)
	err := r.wait(time.Minute)
	if code := exitCode(err); code == 0 || code == -1 {
		t.Errorf("berth run = %v (exit %d), want a non-zero exit status", err, code)
	}
	pod := r.status()
	st := containerStatusOf(pod, "app")
	if pod.Status.Phase != corev1.PodFailed || st.State.Terminated == nil || st.State.Terminated.ExitCode != 3 || st.RestartCount != 0 {
		t.Errorf("phase %s, app %+v restarts %d: want Failed, exit 3, no restart", pod.Status.Phase, st.State, st.RestartCount)
	}
}

// TestRunPostStartHookFails: a failing PostStart hook kills the container
// (FailedPostStartHook shown) and it is restarted.
func TestRunPostStartHookFails(t *testing.T) {
	e := newEnv(t)
	r := e.startRun(`apiVersion: v1
kind: Pod
metadata: {name: hook, labels: {test: "{{TEST}}", io.berth.test: "true"}}
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: ` + busybox + `
    command: [sh, -c, "sleep 1000"]
    lifecycle:
      postStart:
        exec: {command: [sh, -c, "echo hook-out; exit 7"]}
`)
	r.waitOutput("FailedPostStartHook", time.Minute)
	r.waitOutput("Started container app", time.Minute)
	// The restart after the kill: a second Started.
	r.waitOutputCount("Started container app", 2, time.Minute)
	if !strings.Contains(r.out.String(), "hook-out") {
		t.Errorf("the hook's output is not in the event")
	}
	r.stop(time.Minute)
	if st := containerStatusOf(r.status(), "app"); st.RestartCount < 1 {
		t.Errorf("restart count %d, want ≥ 1", st.RestartCount)
	}
}

// TestRunLivenessRestarts: a liveness probe that fails restarts the
// container; its restart count grows.
func TestRunLivenessRestarts(t *testing.T) {
	e := newEnv(t)
	r := e.startRun(`apiVersion: v1
kind: Pod
metadata: {name: live, labels: {test: "{{TEST}}", io.berth.test: "true"}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: ` + busybox + `
    command: [sh, -c, "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 1000"]
    livenessProbe:
      exec: {command: [cat, /tmp/healthy]}
      periodSeconds: 1
      failureThreshold: 2
`)
	r.waitOutput("failed liveness probe, will be restarted", 90*time.Second)
	r.waitOutput("Liveness probe failed", time.Second)
	r.waitOutputCount("Started container app", 2, 90*time.Second)
	r.stop(time.Minute)
	if st := containerStatusOf(r.status(), "app"); st.RestartCount < 1 {
		t.Errorf("restart count %d, want ≥ 1", st.RestartCount)
	}
}

// TestRunConfigMapSecret: a ConfigMap and a Secret from the same file,
// mounted and in env.
func TestRunConfigMapSecret(t *testing.T) {
	e := newEnv(t)
	r := e.startRun(`apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello, mode: fast}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {password: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: cms, labels: {test: "{{TEST}}", io.berth.test: "true"}}
spec:
  restartPolicy: Never
  volumes:
  - {name: c, configMap: {name: cfg}}
  - {name: s, secret: {secretName: sec, defaultMode: 0400}}
  containers:
  - name: app
    image: ` + busybox + `
    command: [sh, -c, 'echo "env=$GREETING/$PW/$CFG_mode"; echo "file=$(cat /etc/c/greeting)/$(cat /etc/s/password)"; stat -c %a /etc/s/..data/password; echo "$(MSG)"; echo "sub=$(cat /greeting.txt)"']
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}
    - {name: PW, valueFrom: {secretKeyRef: {name: sec, key: password}}}
    - {name: MSG, value: "$(GREETING) world"}
    envFrom:
    - {prefix: CFG_, configMapRef: {name: cfg}}
    volumeMounts:
    - {name: c, mountPath: /etc/c}
    - {name: s, mountPath: /etc/s}
    - {name: c, mountPath: /greeting.txt, subPath: greeting}
`)
	if err := r.wait(time.Minute); err != nil {
		t.Fatalf("berth run: %v", err)
	}
	out := r.out.String()
	for _, want := range []string{"[app] env=hello/s3cret/fast", "[app] file=hello/s3cret", "[app] 400", "[app] hello world", "[app] sub=hello"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the output", want)
		}
	}
}

// TestRunHostPort: a container port with a hostPort answers on the host.
func TestRunHostPort(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	r := e.startRun(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: web, labels: {test: "{{TEST}}", io.berth.test: "true"}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: %s
    command: [sh, -c, "mkdir /www && echo port-ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{containerPort: 8080, hostPort: %d}]
`, busybox, port))
	r.waitOutput("Started container web", time.Minute)
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, err := httpGet(addr, "/index.html")
		if err == nil && strings.Contains(body, "port-ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v %q", addr, err, body)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err := r.stop(time.Minute); exitCode(err) != 130 {
		t.Errorf("berth run after Ctrl-C = %v, want exit status 130", err)
	}
}

// TestRunCtrlCPreStop: Ctrl-C runs the preStop hook (it writes a file to
// a hostPath) before the container stops, and --rm leaves nothing.
func TestRunCtrlCPreStop(t *testing.T) {
	e := newEnv(t)
	r := e.startRun(`apiVersion: v1
kind: Pod
metadata: {name: stopper, labels: {test: "{{TEST}}", io.berth.test: "true"}}
spec:
  terminationGracePeriodSeconds: 5
  volumes:
  - {name: out, hostPath: {path: "{{DIR}}/out", type: DirectoryOrCreate}}
  containers:
  - name: app
    image: `+busybox+`
    command: [sh, -c, "trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done"]
    volumeMounts: [{name: out, mountPath: /out}]
    lifecycle:
      preStop:
        exec: {command: [sh, -c, "echo prestop-ran > /out/prestop"]}
`, "--rm")
	r.waitOutput("[app] ready", time.Minute)
	r.stop(time.Minute)
	b, err := os.ReadFile(filepath.Join(r.dir, "out", "prestop"))
	if err != nil || strings.TrimSpace(string(b)) != "prestop-ran" {
		t.Errorf("preStop file: %q, %v", b, err)
	}
	if !strings.Contains(r.out.String(), "[app] got-term") {
		t.Errorf("the container did not get SIGTERM after its hook")
	}
	// --rm: nothing of the pod is left in the runtime.
	list, err := e.rt.ListPodSandbox(e.ctx(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		if p.Metadata.Name == "stopper" {
			t.Errorf("sandbox %s left after --rm", p.Id)
		}
	}
}

// TestRunThenRm: a pod run without --rm stays in the runtime after it
// ends; berth rm of the same manifest removes it, its logs and volumes,
// and is refused while a berth run runs the pod.
func TestRunThenRm(t *testing.T) {
	e := newEnv(t)
	manifest := `apiVersion: v1
kind: Pod
metadata: {name: leftover, labels: {test: "{{TEST}}", io.berth.test: "true"}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  volumes: [{name: scratch, emptyDir: {}}]
  containers:
  - name: app
    image: ` + busybox + `
    command: [sh, -c, "echo done > /scratch/x; echo done"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
`
	r := e.startRun(manifest)
	if err := r.wait(time.Minute); err != nil {
		t.Fatalf("berth run: %v", err)
	}
	if n := len(e.sandboxesNamed("leftover")); n != 1 {
		t.Fatalf("%d sandboxes after the run, want the 1 it left", n)
	}
	rm := func() (string, error) {
		var out, errOut syncBuffer
		cmd := cli.NewRoot(&out, &errOut)
		cmd.SetArgs([]string{"rm", filepath.Join(r.dir, "pod.yaml"), "--runtime-endpoint", "unix://" + e.socket,
			"--pod-logs-dir", filepath.Join(r.dir, "pods"), "--state-dir", filepath.Join(r.dir, "state")})
		err := cmd.Execute()
		return out.String() + errOut.String(), err
	}
	if out, err := rm(); err != nil || !strings.Contains(out, "removed pod default/leftover") {
		t.Fatalf("berth rm: %v\n%s", err, out)
	}
	if n := len(e.sandboxesNamed("leftover")); n != 0 {
		t.Errorf("%d sandboxes after berth rm", n)
	}
	if ents, _ := os.ReadDir(filepath.Join(r.dir, "pods")); len(ents) != 0 {
		t.Errorf("pod log directories left: %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(r.dir, "state", "pods")); len(ents) != 0 {
		t.Errorf("pod state left: %v", ents)
	}
	if out, err := rm(); err != nil {
		t.Errorf("a second berth rm: %v\n%s", err, out)
	}

	// While a run holds the pod, rm is refused.
	busy := e.startRun(strings.Replace(manifest, `"echo done > /scratch/x; echo done"`, `"echo up; sleep 1000"`, 1))
	busy.waitOutput("[app] up", time.Minute)
	var out, errOut syncBuffer
	cmd := cli.NewRoot(&out, &errOut)
	cmd.SetArgs([]string{"rm", filepath.Join(busy.dir, "pod.yaml"), "--runtime-endpoint", "unix://" + e.socket,
		"--pod-logs-dir", filepath.Join(busy.dir, "pods"), "--state-dir", filepath.Join(busy.dir, "state")})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "being run by another berth run") {
		t.Errorf("berth rm of a pod being run = %v, want a refusal", err)
	}
	busy.stop(time.Minute)
}

// sandboxesNamed lists the sandboxes of pods called name.
func (e *env) sandboxesNamed(name string) []string {
	e.t.Helper()
	list, err := e.rt.ListPodSandbox(e.ctx(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, p := range list.Items {
		if p.Metadata.Name == name {
			ids = append(ids, p.Id)
		}
	}
	return ids
}
