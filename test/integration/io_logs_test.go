package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestIOLogs: a container's stdout and stderr reach the CRI log file in
// the kubelet's format with Docker's timestamps, and crictl logs reads
// them back whole, by tail, by age and following.
func TestIOLogs(t *testing.T) {
	e := newEnv(t)
	c := newCrictl(e)
	pod, podID := e.startPod("logs", nil)

	cfg := containerConfig("printer", `echo early-out; echo early-err >&2; sleep 4; echo late-out1; sleep 0.3; echo late-err >&2; sleep 0.3; echo late-out2; sleep 3600`)
	path := logPathOf(pod, cfg)
	begin := time.Now()
	id := e.runContainer(podID, pod, cfg)
	if fi, err := os.Stat(path); err != nil {
		t.Fatalf("log file when StartContainer returned: %v", err)
	} else if !fi.Mode().IsRegular() {
		t.Fatalf("log file %s is %v, want a regular file", path, fi.Mode())
	}
	if got := e.containerStatus(id).GetLogPath(); got != path {
		t.Errorf("ContainerStatus log_path = %q, want %q", got, path)
	}

	waitLog(t, path, 20*time.Second, 0, func(l []criLine) bool { return lastText(l) == "late-out2" })
	// --since first, while the late part is under 2 s old and the early
	// part (4 s before it) is not.
	sinceStart := time.Now()
	sinceOut, sinceErr, err := c.runIn(30*time.Second, nil, "logs", "--since", "2s", id)
	if err != nil {
		t.Fatalf("crictl logs --since 2s: %v\n%s", err, sinceErr)
	}
	sinceEnd := time.Now()

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The format, byte for byte, before the parser's reading of it.
	recordRE := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d) (stdout|stderr) [PF] .*$`)
	for i, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		if !recordRE.MatchString(line) {
			t.Errorf("record %d %q is not <RFC3339Nano> <stdout|stderr> <P|F> <text>", i+1, line)
		}
	}
	recs, err := parseCRILog(raw, true)
	if err != nil {
		t.Fatal(err)
	}
	byText := map[string]time.Time{}
	for _, r := range recs {
		byText[r.Text] = r.Time
		if r.Time.Before(begin.Add(-time.Second)) || r.Time.After(time.Now()) {
			t.Errorf("record %q has time %v, outside the container's life (%v to now)", r.Text, r.Time, begin)
		}
	}
	// Within a stream the order is the program's; across streams Docker
	// keeps the order only for writes apart in time (the sleeps).
	lines := reassemble(recs)
	if out, errs := streamTexts(lines, "stdout"), streamTexts(lines, "stderr"); !slices.Equal(out, []string{"early-out", "late-out1", "late-out2"}) || !slices.Equal(errs, []string{"early-err", "late-err"}) {
		t.Errorf("records = %+v, want stdout early-out late-out1 late-out2 and stderr early-err late-err", recs)
	}
	for _, r := range recs {
		if r.Partial {
			t.Errorf("record %+v is P; every line here is short and complete", r)
		}
	}
	// The timestamps are when the container wrote (Docker's), not when
	// berth copied: 4 s lie between the early and the late part.
	if d := byText["late-out1"].Sub(byText["early-out"]); d < 3900*time.Millisecond || d > 6*time.Second {
		t.Errorf("late-out1 is %v after early-out in the file, want about 4s (the container's sleep)", d)
	}
	if !byText["late-out1"].Before(byText["late-err"]) || !byText["late-err"].Before(byText["late-out2"]) {
		t.Errorf("times late-out1 %v, late-err %v, late-out2 %v are not increasing", byText["late-out1"], byText["late-err"], byText["late-out2"])
	}

	// --since 2s: a record older than 2 s when crictl started is left out,
	// one younger than 2 s when it ended is shown (in practice: the late
	// part only, the early part being 4 s older).
	shown := map[string]bool{}
	for _, l := range strings.Split(sinceOut+sinceErr, "\n") {
		shown[l] = true
	}
	for _, r := range recs {
		switch {
		case r.Time.Before(sinceStart.Add(-2*time.Second)) && shown[r.Text]:
			t.Errorf("crictl logs --since 2s shows %q, written %v before it started", r.Text, sinceStart.Sub(r.Time).Round(time.Millisecond))
		case !r.Time.Before(sinceEnd.Add(-2*time.Second)) && !shown[r.Text]:
			t.Errorf("crictl logs --since 2s lacks %q, written %v before it ended", r.Text, sinceEnd.Sub(r.Time).Round(time.Millisecond))
		}
	}
	if !strings.HasSuffix(sinceOut, "late-out2\n") || !strings.HasSuffix(sinceErr, "late-err\n") || strings.Contains(sinceOut+sinceErr, "early") {
		t.Errorf("crictl logs --since 2s (%v after late-out2): stdout %q stderr %q, want the late part only", sinceEnd.Sub(byText["late-out2"]).Round(time.Millisecond), sinceOut, sinceErr)
	}
	out, errOut, err := c.runIn(30*time.Second, nil, "logs", id)
	if err != nil || out != "early-out\nlate-out1\nlate-out2\n" || errOut != "early-err\nlate-err\n" {
		t.Errorf("crictl logs: stdout %q stderr %q err %v, want every line on its stream", out, errOut, err)
	}
	out, errOut, err = c.runIn(30*time.Second, nil, "logs", "--tail", "2", id)
	if err != nil || out != "late-out2\n" || errOut != "late-err\n" {
		t.Errorf("crictl logs --tail 2: stdout %q stderr %q err %v, want late-err and late-out2", out, errOut, err)
	}
	out, _, err = c.runIn(30*time.Second, nil, "logs", "--timestamps", "--tail", "1", id)
	ts, text, _ := strings.Cut(out, " ")
	if tt, perr := time.Parse(time.RFC3339Nano, ts); err != nil || perr != nil || !tt.Equal(byText["late-out2"]) || text != "late-out2\n" {
		t.Errorf("crictl logs --timestamps --tail 1 = %q (%v), want late-out2 with its record's time %v", out, err, byText["late-out2"])
	}

	t.Run("follow", func(t *testing.T) {
		ticker := containerConfig("ticker", `i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done`)
		tpath := logPathOf(pod, ticker)
		tid := e.forT(t).runContainer(podID, pod, ticker)
		before := waitLog(t, tpath, 20*time.Second, 0, countAtLeast(3))
		lastBefore := tickNumber(t, lastText(before))

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		f := c.start(ctx, nil, "logs", "-f", tid)
		// Lines the file did not hold when crictl started.
		want := fmt.Sprintf("tick-%d\n", lastBefore+8)
		got := waitText(t, f.stdout, want, 15*time.Second)
		cancel()
		f.wait(t, 10*time.Second)
		lines := strings.Split(strings.TrimSuffix(got[:strings.Index(got, want)+len(want)], "\n"), "\n")
		if first := tickNumber(t, lines[0]); first != 0 {
			t.Errorf("crictl logs -f began with %q, want tick-0 (the whole log first)", lines[0])
		}
		for i, l := range lines {
			if n := tickNumber(t, l); n != i {
				t.Fatalf("crictl logs -f line %d is %q, want tick-%d; output %q", i+1, l, i, clip(got))
			}
		}
	})
}

func tickNumber(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(s, "tick-"))
	if err != nil || !strings.HasPrefix(s, "tick-") {
		t.Fatalf("%q is no tick line", s)
	}
	return n
}

// TestIOLogsManyLines: 100,000 lines written as fast as a container can
// reach the file, every one in order, once the container has exited.
func TestIOLogsManyLines(t *testing.T) {
	e := newEnv(t)
	pod, podID := e.startPod("many", nil)
	const n = 100000
	cfg := containerConfig("seq", fmt.Sprintf("seq 1 %d", n))
	path := logPathOf(pod, cfg)
	start := time.Now()
	id := e.runContainer(podID, pod, cfg)
	st := e.waitExit(id, 60*time.Second)
	exited := time.Now()
	if st.ExitCode != 0 {
		t.Fatalf("seq exited %d", st.ExitCode)
	}
	lines := waitLog(t, path, 60*time.Second, 500*time.Millisecond, func(l []criLine) bool { return len(l) >= n })
	t.Logf("%d lines: container ran %v, file complete %v after its exit", len(lines), exited.Sub(start).Round(time.Millisecond), time.Since(exited).Round(time.Millisecond))
	if errs := streamTexts(lines, "stderr"); len(errs) > 0 {
		t.Errorf("%d stderr lines, want none: %q", len(errs), errs[:min(len(errs), 5)])
	}
	if p := checkNumbered(streamTexts(lines, "stdout"), n); p != "" || len(lines) != n {
		t.Errorf("%d lines in the file, want 1..%d once each in order: %s", len(lines), n, p)
	}
}

// TestIOLogsReopen: the kubelet's rotation renames the file and calls
// ReopenContainerLog in the middle of steady output; the two files then
// hold every line exactly once, in order.
func TestIOLogsReopen(t *testing.T) {
	e := newEnv(t)
	c := newCrictl(e)
	pod, podID := e.startPod("reopen", nil)
	// Prints numbered lines until told to stop, so the reopen lands in the
	// middle of the output however slow the machine is. The stop signal is
	// a file in a host directory: an exec would race the container's exit.
	ctl := t.TempDir()
	cfg := containerConfig("steady", `i=1; while [ ! -e /ctl/stop ]; do echo $i; i=$((i+1)); if [ $((i % 50)) -eq 0 ]; then sleep 0.01; fi; done`)
	cfg.Mounts = []*runtimeapi.Mount{{HostPath: ctl, ContainerPath: "/ctl"}}
	path := logPathOf(pod, cfg)
	id := e.runContainer(podID, pod, cfg)

	e.waitPrinted(id, 5000, 20*time.Second)
	waitGrown(t, path, 20*time.Second, 1)
	rotated := path + "." + time.Now().UTC().Format("20060102-150405")
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.ReopenContainerLog(e.ctx(), &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		t.Fatalf("ReopenContainerLog: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("no new log file when ReopenContainerLog returned: %v", err)
	}
	mid := readCRILog(t, path, false)
	waitGrown(t, path, 30*time.Second, 1000)
	if err := os.WriteFile(filepath.Join(ctl, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	st := e.waitExit(id, 60*time.Second)
	if st.ExitCode != 0 {
		t.Errorf("printer exited %d", st.ExitCode)
	}
	after := reassemble(readCRILog(t, path, true))
	before := reassemble(readCRILog(t, rotated, true))
	t.Logf("rotated file: %d lines (last %q); new file: %d lines (first %q; %d records when reopen returned)", len(before), lastText(before), len(after), firstText(after), len(mid))
	if len(before) == 0 || len(after) == 0 {
		t.Fatalf("rotated file %d lines, new file %d lines: want the output split between them", len(before), len(after))
	}
	n, err := strconv.Atoi(lastText(after))
	if err != nil {
		t.Fatalf("last line of the new file %q is not a number", lastText(after))
	}
	all := append(streamTexts(before, "stdout"), streamTexts(after, "stdout")...)
	if p := checkNumbered(all, n); p != "" {
		t.Errorf("rotated + new file: %d lines, want 1..%d once each in order: %s", len(all), n, p)
	}

	// The file of an exited container is not reopened; an unknown one is
	// not found, through the CRI and through crictl.
	_, err = e.rt.ReopenContainerLog(e.ctx(), &runtimeapi.ReopenContainerLogRequest{ContainerId: id})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ReopenContainerLog of an exited container = %v, want FailedPrecondition", err)
	}
	unknown := strings.Repeat("f", 64)
	_, err = e.rt.ReopenContainerLog(e.ctx(), &runtimeapi.ReopenContainerLogRequest{ContainerId: unknown})
	if status.Code(err) != codes.NotFound {
		t.Errorf("ReopenContainerLog of an unknown container = %v, want NotFound", err)
	}
	if _, errOut, err := c.runIn(30*time.Second, nil, "logs", "--reopen", unknown); err == nil || !strings.Contains(errOut, "NotFound") {
		t.Errorf("crictl logs --reopen %s: err %v, stderr %q; want a NotFound failure", unknown, err, errOut)
	}
}

// waitGrown waits until the CRI log at path holds at least n records,
// while it may still be growing (waitLog waits for it to settle).
func waitGrown(t *testing.T, path string, timeout time.Duration, n int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if got := len(readCRILog(t, path, false)); got >= n {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("CRI log %s: %d records after %v, want at least %d", path, got, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func firstText(lines []criLine) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[0].Text
}

// TestIOLogsRestart: berth restarts while a container prints; its copier
// resumes after the last record the file holds, losing and repeating
// nothing.
func TestIOLogsRestart(t *testing.T) {
	e := newEnv(t)
	pod, podID := e.startPod("restart", nil)
	const n = 20000
	cfg := containerConfig("steady", steadyPrinter(n))
	path := logPathOf(pod, cfg)
	id := e.runContainer(podID, pod, cfg)

	e.waitPrinted(id, 3000, 20*time.Second)
	e.restart()
	atRestart := len(reassemble(readCRILog(t, path, false)))
	if st := e.containerStatus(id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("the printer is %v after the restart; the restart must fall in its output", st.State)
	}

	e.waitExit(id, 60*time.Second)
	lines := waitLog(t, path, 30*time.Second, 500*time.Millisecond, func(l []criLine) bool { return lastText(l) == strconv.Itoa(n) })
	t.Logf("%d lines in the file when berth was back; %d at the end", atRestart, len(lines))
	if p := checkNumbered(streamTexts(lines, "stdout"), n); p != "" || len(lines) != n {
		t.Errorf("%d lines after a restart in the middle, want 1..%d once each in order: %s", len(lines), n, p)
	}

	// A container that ends while berth is down: the new berth copies
	// what is left.
	cfg2 := containerConfig("while-down", `sleep 2; seq 1 500`)
	path2 := logPathOf(pod, cfg2)
	id2 := e.runContainer(podID, pod, cfg2)
	e.stop()
	waitCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := e.s.docker.ContainerWait(waitCtx, id2, client.ContainerWaitOptions{})
	select {
	case <-res.Result:
	case err := <-res.Error:
		t.Fatalf("docker wait: %v", err)
	}
	e.start()
	lines2 := waitLog(t, path2, 30*time.Second, 500*time.Millisecond, func(l []criLine) bool { return lastText(l) == "500" })
	if p := checkNumbered(streamTexts(lines2, "stdout"), 500); p != "" || len(lines2) != 500 {
		t.Errorf("container that exited while berth was down: %d lines, want 1..500: %s", len(lines2), p)
	}
}

// TestIOLogsOtherBerth: a second berth starting on the same dockerd, with
// a root of its own (another test's, a conformance run's, as on this host
// while the suite runs), leaves this berth's container logs alone: the
// file still holds every line exactly once.
func TestIOLogsOtherBerth(t *testing.T) {
	e := newEnv(t)
	pod, podID := e.startPod("other", nil)
	const n = 20000
	cfg := containerConfig("steady", steadyPrinter(n))
	path := logPathOf(pod, cfg)
	id := e.runContainer(podID, pod, cfg)

	e.waitPrinted(id, 3000, 20*time.Second)
	stop := startOtherBerth(t)
	time.Sleep(time.Second)
	other := stop()

	e.waitExit(id, 60*time.Second)
	lines := waitLog(t, path, 30*time.Second, 500*time.Millisecond, func(l []criLine) bool { return lastText(l) == strconv.Itoa(n) })
	if p := checkNumbered(streamTexts(lines, "stdout"), n); p != "" || len(lines) != n {
		var about []string
		for _, l := range strings.Split(other, "\n") {
			if strings.Contains(l, id) {
				about = append(about, l)
			}
		}
		t.Errorf("%d lines after another berth started on the same dockerd, want 1..%d once each in order: %s\nthe other berth's log about this container:\n%s",
			len(lines), n, p, strings.Join(about, "\n"))
	}
}

// TestIOLogsLongAndBinary: a 40 KiB line becomes P records of 16 KiB and
// an F record; bytes that are not UTF-8 reach the file as Docker returns
// them. Docker 20.10's json-file stores each line as a JSON string, which
// turns every invalid UTF-8 byte into U+FFFD (EF BF BD) and keeps NUL and
// other control bytes; so berth's file must equal what Docker's own log
// API returns.
func TestIOLogsLongAndBinary(t *testing.T) {
	e := newEnv(t)
	pod, podID := e.startPod("long", nil)
	// 4096 fields of 10 bytes: 40960 bytes, then a newline.
	// Then a line of exactly 16 KiB: json-file cuts it at its full
	// buffer, before the newline comes.
	cfg := containerConfig("long", `awk 'BEGIN { for (i = 0; i < 4096; i++) printf "%09d,", i; print "" }'; printf 'bin:\000\001\377\376\tend\n'; awk 'BEGIN { for (i = 0; i < 1024; i++) printf "%015d,", i; print "" }'`)
	path := logPathOf(pod, cfg)
	id := e.runContainer(podID, pod, cfg)
	e.waitExit(id, 30*time.Second)
	lines := waitLog(t, path, 30*time.Second, 500*time.Millisecond, func(l []criLine) bool { return len(l) >= 3 })
	recs := readCRILog(t, path, true)

	var long strings.Builder
	for i := range 4096 {
		fmt.Fprintf(&long, "%09d,", i)
	}
	type shape struct {
		Partial bool
		Len     int
	}
	var shapes []shape
	for _, r := range recs[:min(3, len(recs))] {
		shapes = append(shapes, shape{r.Partial, len(r.Text)})
	}
	if want := []shape{{true, 16384}, {true, 16384}, {false, 8192}}; fmt.Sprint(shapes) != fmt.Sprint(want) {
		t.Errorf("the 40 KiB line's records are %v (partial, length), want %v", shapes, want)
	}
	if len(lines) < 1 || lines[0].Text != long.String() {
		t.Errorf("the 40 KiB line reassembles to %d bytes %q, want the original %d bytes", len(firstText(lines)), clip(firstText(lines)), long.Len())
	}
	var exact strings.Builder
	for i := range 1024 {
		fmt.Fprintf(&exact, "%015d,", i)
	}
	if len(lines) != 3 || lines[2].Text != exact.String() {
		t.Errorf("%d lines; the third reassembles to %d bytes, want the 16 KiB line", len(lines), len(firstTextAt(lines, 2)))
	}

	// What Docker returns for the same container.
	rc, err := e.s.docker.ContainerLogs(e.ctx(), id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	var dout, derr bytes.Buffer
	_, err = stdcopy.StdCopy(&dout, &derr, rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	const dockerBinary = "bin:\x00\x01\uFFFD\uFFFD\tend"
	if !strings.Contains(dout.String(), "\n"+dockerBinary+"\n") {
		t.Errorf("Docker returns the binary line as %q; expected json-file to make %q of it", clip(dout.String()[min(dout.Len(), long.Len()):]), dockerBinary)
	}
	if len(lines) < 2 || lines[1].Text != dockerBinary {
		t.Errorf("berth's file holds the binary line as %q, want %q", firstTextAt(lines, 1), dockerBinary)
	}
	var file strings.Builder
	for _, r := range recs {
		if r.Stream != "stdout" {
			t.Errorf("record on %s: %q", r.Stream, clip(r.Text))
			continue
		}
		file.WriteString(r.Text)
		if !r.Partial {
			file.WriteString("\n")
		}
	}
	if file.String() != dout.String() || derr.Len() != 0 {
		t.Errorf("berth's file (%d bytes of text) differs from Docker's log (%d bytes, %d on stderr); tails %q and %q",
			file.Len(), dout.Len(), derr.Len(), tailOf(file.String(), 60), tailOf(dout.String(), 60))
	}
}

func firstTextAt(lines []criLine, i int) string {
	if i >= len(lines) {
		return ""
	}
	return lines[i].Text
}

func tailOf(s string, n int) string {
	return s[max(0, len(s)-n):]
}

// TestIOLogsDockerRotation: with Docker's own log bounded small
// (--docker-log-max-size), steady output rotates it many times while
// berth copies it; the CRI log still has every line in order, and Docker
// keeps no more than its files' worth. (A burst larger than the files,
// written faster than berth copies, would lose lines: the bound is
// opt-in.)
func TestIOLogsDockerRotation(t *testing.T) {
	e := newEnv(t, "--docker-log-max-size", "200k", "--docker-log-max-files", "2")
	pod, podID := e.startPod("rotate", nil)
	const n = 30000
	// 300 lines (about 24 KiB of Docker log) every 20 ms.
	cfg := containerConfig("seq", fmt.Sprintf("i=1; while [ $i -le %d ]; do seq $i $((i+299)); i=$((i+300)); sleep 0.02; done", n))
	path := logPathOf(pod, cfg)
	id := e.runContainer(podID, pod, cfg)
	if st := e.waitExit(id, 60*time.Second); st.ExitCode != 0 {
		t.Fatalf("seq exited %d", st.ExitCode)
	}
	lines := waitLog(t, path, 60*time.Second, 500*time.Millisecond, func(l []criLine) bool { return len(l) >= n })
	if p := checkNumbered(streamTexts(lines, "stdout"), n); p != "" || len(lines) != n {
		t.Errorf("%d lines in the CRI log, want 1..%d once each in order: %s", len(lines), n, p)
	}
	res, err := e.s.docker.ContainerInspect(e.ctx(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	files, _ := filepath.Glob(res.Container.LogPath + "*")
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			total += fi.Size()
		}
	}
	t.Logf("Docker's log: %d files, %d bytes; CRI log: %d lines", len(files), total, len(lines))
	if len(files) > 2 || total > 2*300<<10 {
		t.Errorf("Docker kept %d files, %d bytes: want at most 2 of about 200k", len(files), total)
	}
}
