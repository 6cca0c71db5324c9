package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var (
	crictlOnce sync.Once
	crictlBin  string
	crictlErr  error
)

// crictlBinary builds crictl (a tool dependency in go.mod) once.
func crictlBinary(t *testing.T) string {
	t.Helper()
	crictlOnce.Do(func() {
		crictlBin = filepath.Join(theSuite.tmp, "crictl")
		out, err := exec.Command("go", "build", "-o", crictlBin, "sigs.k8s.io/cri-tools/cmd/crictl").CombinedOutput()
		if err != nil {
			crictlErr = fmt.Errorf("go build crictl: %v\n%s", err, out)
		}
	})
	if crictlErr != nil {
		t.Fatal(crictlErr)
	}
	return crictlBin
}

// crictl runs the crictl command line against one berth.
type crictl struct {
	t    *testing.T
	bin  string
	args []string
	dir  string
}

func newCrictl(e *env) *crictl {
	e.t.Helper()
	dir := e.t.TempDir()
	endpoint := "unix://" + e.socket
	cfg := filepath.Join(dir, "crictl.yaml")
	// A config file that exists, so crictl does not warn about looking for
	// one; the flags say the same.
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("runtime-endpoint: %s\nimage-endpoint: %s\ntimeout: 60\n", endpoint, endpoint)), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return &crictl{t: e.t, bin: crictlBinary(e.t), dir: dir,
		args: []string{"--config", cfg, "--runtime-endpoint", endpoint, "--image-endpoint", endpoint, "--timeout", "60s"}}
}

// run runs crictl with args and returns its stdout; a failure fails the
// test.
func (c *crictl) run(args ...string) string {
	c.t.Helper()
	stdout, stderr, err := c.try(args...)
	if err != nil {
		c.t.Fatalf("crictl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

func (c *crictl) try(args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(c.bin, append(slices.Clone(c.args), args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if strings.Contains(errOut.String(), "does not exist") {
		c.t.Errorf("crictl %s warned about its config:\n%s", strings.Join(args, " "), errOut.String())
	}
	return out.String(), errOut.String(), err
}

// writeJSON writes v as JSON into the crictl's directory and returns the
// path. The CRI types' JSON field names are what crictl reads.
func (c *crictl) writeJSON(name string, v any) string {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// inspect runs an inspect command with JSON output and decodes it.
func (c *crictl) inspect(cmd string, args ...string) map[string]any {
	c.t.Helper()
	out := c.run(append([]string{cmd, "-o", "json"}, args...)...)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		c.t.Fatalf("crictl %s %s: %v\n%s", cmd, strings.Join(args, " "), err, out)
	}
	return m
}

// jsonPath walks decoded JSON along keys ("status", "state").
func jsonPath(m any, keys ...string) any {
	for _, k := range keys {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[k]
	}
	return m
}

// tableRows are the rows of crictl's table output, header dropped, each
// split into its columns.
func tableRows(out string) [][]string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var rows [][]string
	for _, l := range lines[1:] {
		if cols := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(l), -1); len(cols) > 1 {
			rows = append(rows, cols)
		}
	}
	return rows
}

var fullID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestCrictlLifecycle drives berth through crictl as a user does: runtime
// and image information, a pod and a container through their whole life,
// and removing an image.
func TestCrictlLifecycle(t *testing.T) {
	// The image for rmi, made before newEnv so it is removed after the
	// pods: a build of its own, since removing an image removes all of its
	// tags, and a mere tag of busybox would take busybox's with it.
	rmiImage := "berth.local/rmi-test:1"
	buildImage(t, rmiImage, fmt.Sprintf("FROM %s\nLABEL io.berth.test.rmi=%q\n", busybox, t.Name()+fmt.Sprint(time.Now().UnixNano())))
	e := newEnv(t)
	c := newCrictl(e)

	dv, err := e.s.docker.ServerVersion(e.ctx(), client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := c.run("version")
	for _, want := range []string{"RuntimeName:  docker", "RuntimeVersion:  " + dv.Version, "RuntimeApiVersion:  v1"} {
		if !strings.Contains(out, want) {
			t.Errorf("crictl version lacks %q:\n%s", want, out)
		}
	}

	info := c.inspect("info")
	conds, _ := jsonPath(info, "status", "conditions").([]any)
	ready := map[string]any{}
	for _, cond := range conds {
		ready[fmt.Sprint(jsonPath(cond, "type"))] = jsonPath(cond, "status")
	}
	if ready["RuntimeReady"] != true || ready["NetworkReady"] != true {
		t.Errorf("crictl info conditions = %v, want RuntimeReady and NetworkReady true", conds)
	}

	bi, err := e.s.docker.ImageInspect(e.ctx(), busybox)
	if err != nil {
		t.Fatal(err)
	}
	repo, tag, _ := strings.Cut(busybox, ":")
	found := false
	for _, row := range tableRows(c.run("images")) {
		if len(row) >= 3 && row[0] == repo && row[1] == tag && strings.HasPrefix(strings.TrimPrefix(bi.ID, "sha256:"), row[2]) {
			found = true
		}
	}
	if !found {
		t.Errorf("crictl images lists no %s with id %s", busybox, bi.ID)
	}
	img := c.inspect("inspecti", busybox)
	if id := jsonPath(img, "status", "id"); id != bi.ID {
		t.Errorf("crictl inspecti id = %v, want %s", id, bi.ID)
	}
	if tags, _ := jsonPath(img, "status", "repoTags").([]any); !slices.Contains(tags, any(busybox)) {
		t.Errorf("crictl inspecti repoTags = %v, want %s among them", tags, busybox)
	}

	// A pod, labelled like the harness's, so cleanup finds it if this
	// test stops half-way.
	podCfg := e.podConfig("crpod")
	podFile := c.writeJSON("pod.json", podCfg)
	podID := strings.TrimSpace(c.run("runp", podFile))
	if !fullID.MatchString(podID) {
		t.Fatalf("crictl runp printed %q, want a pod id", podID)
	}
	podIP := e.podStatus(podID).GetNetwork().GetIp()
	p := c.inspect("inspectp", podID)
	if st, ip, name := jsonPath(p, "status", "state"), jsonPath(p, "status", "network", "ip"), jsonPath(p, "status", "metadata", "name"); st != "SANDBOX_READY" || ip != podIP || podIP == "" || name != "crpod" {
		t.Errorf("crictl inspectp: state %v ip %v name %v, want SANDBOX_READY %s crpod", st, ip, name, podIP)
	}
	if rows := tableRows(c.run("pods", "--id", podID)); len(rows) != 1 || rows[0][0] != podID[:13] || rows[0][2] != "Ready" || rows[0][3] != "crpod" {
		t.Errorf("crictl pods --id %s = %v, want one Ready crpod", podID, rows)
	}

	ctrCfg := containerConfig("web", "echo hello-crictl; sleep 3600")
	ctrFile := c.writeJSON("ctr.json", ctrCfg)
	ctrID := strings.TrimSpace(c.run("create", podID, ctrFile, podFile))
	if !fullID.MatchString(ctrID) {
		t.Fatalf("crictl create printed %q, want a container id", ctrID)
	}
	psState := func() [][]string { return tableRows(c.run("ps", "-a", "--pod", podID)) }
	if rows := psState(); len(rows) != 1 || rows[0][0] != ctrID[:13] || rows[0][3] != "Created" || rows[0][4] != "web" {
		t.Errorf("crictl ps -a after create = %v, want web Created", rows)
	}
	if out := strings.TrimSpace(c.run("start", ctrID)); out != ctrID {
		t.Errorf("crictl start printed %q, want %s", out, ctrID)
	}
	e.waitOutput(ctrID, "hello-crictl", 10*time.Second)
	if rows := psState(); len(rows) != 1 || rows[0][1] != busybox || rows[0][3] != "Running" || rows[0][6] != podID[:13] {
		t.Errorf("crictl ps after start = %v, want web Running in %s", rows, podID[:13])
	}
	ins := c.inspect("inspect", ctrID)
	if st, sb, id := jsonPath(ins, "status", "state"), jsonPath(ins, "info", "sandboxID"), jsonPath(ins, "status", "id"); st != "CONTAINER_RUNNING" || sb != podID || id != ctrID {
		t.Errorf("crictl inspect: state %v sandbox %v id %v, want CONTAINER_RUNNING %s %s", st, sb, id, podID, ctrID)
	}

	start := time.Now()
	if out := strings.TrimSpace(c.run("stop", "--timeout", "2", ctrID)); out != ctrID {
		t.Errorf("crictl stop printed %q, want %s", out, ctrID)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("crictl stop took %v", took)
	}
	ins = c.inspect("inspect", ctrID)
	if st, fin := jsonPath(ins, "status", "state"), jsonPath(ins, "status", "finishedAt"); st != "CONTAINER_EXITED" || fin == nil || strings.HasPrefix(fmt.Sprint(fin), "0001") {
		t.Errorf("crictl inspect after stop: state %v finishedAt %v", st, fin)
	}
	if rows := psState(); len(rows) != 1 || rows[0][3] != "Exited" {
		t.Errorf("crictl ps -a after stop = %v, want web Exited", rows)
	}
	if out := strings.TrimSpace(c.run("rm", ctrID)); out != ctrID {
		t.Errorf("crictl rm printed %q, want %s", out, ctrID)
	}
	if rows := psState(); len(rows) != 0 {
		t.Errorf("crictl ps -a after rm = %v, want none", rows)
	}

	if out := c.run("stopp", podID); out != "Stopped sandbox "+podID+"\n" {
		t.Errorf("crictl stopp printed %q", out)
	}
	if rows := tableRows(c.run("pods", "--id", podID)); len(rows) != 1 || rows[0][2] != "NotReady" {
		t.Errorf("crictl pods after stopp = %v, want NotReady", rows)
	}
	if out := c.run("rmp", podID); out != "Removed sandbox "+podID+"\n" {
		t.Errorf("crictl rmp printed %q", out)
	}
	if rows := tableRows(c.run("pods", "--id", podID)); len(rows) != 0 {
		t.Errorf("crictl pods after rmp = %v, want none", rows)
	}
	if _, err := e.rt.PodSandboxStatus(e.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID}); err == nil {
		t.Errorf("PodSandboxStatus finds the pod crictl removed")
	}

	// rmi removes the image with every tag, as crictl's warning says.
	if _, err := e.s.docker.ImageTag(e.ctx(), client.ImageTagOptions{Source: rmiImage, Target: "berth.local/rmi-test:2"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeImage(t, "berth.local/rmi-test:2") })
	var tags []string
	for _, row := range tableRows(c.run("images", rmiImage)) {
		tags = append(tags, row[0]+":"+row[1])
	}
	if want := []string{"berth.local/rmi-test:1", "berth.local/rmi-test:2"}; !slices.Equal(tags, want) {
		t.Errorf("crictl images %s lists %v, want a row for each tag of the image: %v", rmiImage, tags, want)
	}
	out = c.run("rmi", rmiImage)
	for _, want := range []string{"Deleted: berth.local/rmi-test:1\n", "Deleted: berth.local/rmi-test:2\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("crictl rmi printed %q, want %q in it", out, want)
		}
	}
	for _, ref := range []string{rmiImage, "berth.local/rmi-test:2"} {
		if _, err := e.s.docker.ImageInspect(e.ctx(), ref); err == nil {
			t.Errorf("%s still in Docker after crictl rmi", ref)
		}
	}
	if rows := tableRows(c.run("images", rmiImage)); len(rows) != 0 {
		t.Errorf("crictl images %s after rmi = %v", rmiImage, rows)
	}
	if _, err := e.s.docker.ImageInspect(e.ctx(), busybox); err != nil {
		t.Errorf("busybox gone after removing another image: %v", err)
	}
}

// TestCrictlImagesByRepository lists the images of one repository, as
// `crictl images [REPOSITORY[:TAG]]` offers and `docker images REPOSITORY`
// does: a repository without a "latest" tag must list its tags too.
func TestCrictlImagesByRepository(t *testing.T) {
	const repo = "berth.local/it-repo-filter"
	buildImage(t, repo+":1", fmt.Sprintf("FROM %s\nLABEL io.berth.test.repo=%q\n", busybox, fmt.Sprint(time.Now().UnixNano())))
	e := newEnv(t)
	c := newCrictl(e)
	for _, ref := range []string{repo + ":1", repo} {
		var tags []string
		for _, row := range tableRows(c.run("images", ref)) {
			tags = append(tags, row[0]+":"+row[1])
		}
		if want := []string{repo + ":1"}; !slices.Equal(tags, want) {
			t.Errorf("crictl images %s lists %v, want %v", ref, tags, want)
		}
	}
}
