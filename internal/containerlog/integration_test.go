package containerlog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// These tests run containers on the local dockerd. They are skipped unless
// BERTH_INTEGRATION=1; then a missing daemon or image is a failure.

const (
	testImage = "berth.local/busybox:1.36"
	testLabel = "io.berth.test"
)

func dockerForTest(tb testing.TB) *client.Client {
	tb.Helper()
	if os.Getenv("BERTH_INTEGRATION") != "1" {
		tb.Skip("needs dockerd; set BERTH_INTEGRATION=1")
	}
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx, client.PingOptions{}); err != nil {
		tb.Fatalf("dockerd: %v", err)
	}
	if _, err := c.ImageInspect(ctx, testImage); err != nil {
		tb.Fatalf("image %s: %v", testImage, err)
	}
	return c
}

// createContainer creates a container running script with sh, labelled for
// the tests and removed when the test ends. driver "" is the daemon's.
func createContainer(tb testing.TB, c *client.Client, script, driver string) string {
	tb.Helper()
	res, err := c.ContainerCreate(context.Background(), client.ContainerCreateOptions{
		Config: &container.Config{
			Image:  testImage,
			Cmd:    []string{"sh", "-c", script},
			Labels: map[string]string{testLabel: "containerlog"},
		},
		HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: driver}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			tb.Errorf("remove test container %s: %v", res.ID, err)
		}
	})
	return res.ID
}

func startContainer(tb testing.TB, c *client.Client, id string) {
	tb.Helper()
	if _, err := c.ContainerStart(context.Background(), id, client.ContainerStartOptions{}); err != nil {
		tb.Fatal(err)
	}
}

func waitExit(tb testing.TB, c *client.Client, id string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := c.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-w.Result:
	case err := <-w.Error:
		tb.Fatal(err)
	}
}

// runLogged creates a container, prepares its log, starts it and its
// copier, as StartContainer does.
func runLogged(t *testing.T, c *client.Client, m *Manager, script, path string) string {
	t.Helper()
	id := createContainer(t, c, script, "")
	if err := m.Prepare(path); err != nil {
		t.Fatal(err)
	}
	startContainer(t, c, id)
	if err := m.Start(t.Context(), id, path); err != nil {
		t.Fatal(err)
	}
	return id
}

// checkNumbered checks that the stream's lines are 1..n, each once, in order.
func checkNumbered(t *testing.T, lines []line, stream string, n int) {
	t.Helper()
	next := 1
	for _, l := range lines {
		if l.stream != stream {
			continue
		}
		if l.partial || l.text != strconv.Itoa(next) {
			t.Fatalf("%s: line %q (partial %v) where %d was due", stream, l.text, l.partial, next)
		}
		next++
	}
	if next != n+1 {
		t.Fatalf("%s: %d lines, want %d", stream, next-1, n)
	}
}

func TestIntegrationFastOutput(t *testing.T) {
	c := dockerForTest(t)
	m := newTestManager(t, c)
	path := filepath.Join(t.TempDir(), "pods", "ctr", "0.log")
	id := runLogged(t, c, m, "seq 1 100000", path)
	waitCopier(t, m, id)
	checkNumbered(t, readLines(t, path), StreamStdout, 100000)
}

func TestIntegrationReopen(t *testing.T) {
	c := dockerForTest(t)
	m := newTestManager(t, c)
	path := filepath.Join(t.TempDir(), "0.log")
	// 20,000 lines in 20 bursts over about 3 s.
	id := runLogged(t, c, m, "for b in $(seq 0 19); do seq $((b*1000+1)) $((b*1000+1000)); sleep 0.15; done", path)
	var files []string
	for i := range 3 {
		time.Sleep(700 * time.Millisecond)
		rotated := fmt.Sprintf("%s.%d", path, i)
		if err := os.Rename(path, rotated); err != nil {
			t.Fatal(err)
		}
		if err := m.Reopen(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		files = append(files, rotated)
	}
	waitCopier(t, m, id)
	files = append(files, path)
	for _, p := range files {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("%s: empty or missing (%v): the rotations did not land mid-run", p, err)
		}
	}
	checkNumbered(t, readLines(t, files...), StreamStdout, 20000)
}

func TestIntegrationRestart(t *testing.T) {
	c := dockerForTest(t)
	state := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(t.TempDir(), "0.log")
	// Both streams at once, so that Docker stores them out of
	// timestamp order now and then.
	const script = "for b in $(seq 0 39); do seq $((b*500+1)) $((b*500+500)) & seq $((b*500+1)) $((b*500+500)) >&2; wait; sleep 0.15; done"
	id := createContainer(t, c, script, "")
	newManager := func() *Manager {
		m, err := New(Options{Docker: c, StateDir: state, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := newManager()
	t.Cleanup(func() { m.Close() })
	if err := m.Prepare(path); err != nil {
		t.Fatal(err)
	}
	startContainer(t, c, id)
	var files []string
	for i := range 4 {
		if err := m.Start(t.Context(), id, path); err != nil {
			t.Fatal(err)
		}
		time.Sleep(400 * time.Millisecond)
		if i%2 == 1 {
			// Rotate just before berth goes down: the new manager
			// resumes from a nearly empty file and the saved position.
			rotated := fmt.Sprintf("%s.%d", path, i)
			if err := os.Rename(path, rotated); err != nil {
				t.Fatal(err)
			}
			if err := m.Reopen(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			files = append(files, rotated)
		}
		m.Close()
		time.Sleep(200 * time.Millisecond) // the container writes on
		m = newManager()
	}
	if err := m.Start(t.Context(), id, path); err != nil {
		t.Fatal(err)
	}
	if st, err := c.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{}); err != nil || !st.Container.State.Running {
		t.Fatalf("the container stopped before the last restart (%v): make it print longer", err)
	}
	waitCopier(t, m, id)
	lines := readLines(t, append(files, path)...)
	checkNumbered(t, lines, StreamStdout, 20000)
	checkNumbered(t, lines, StreamStderr, 20000)
}

// TestIntegrationBytes checks that a long line, binary output and a last
// line without newline come out of the records exactly as Docker returns
// them, and how close that is to what the container wrote: json-file
// stores text as JSON strings, so Docker replaces invalid UTF-8 by U+FFFD;
// the local driver keeps every byte but (Docker 20.10) drops the newline
// that ends a line longer than 16 KiB.
func TestIntegrationBytes(t *testing.T) {
	c := dockerForTest(t)
	const script = `head -c 40960 /dev/zero | tr '\0' a; echo; ` +
		`printf 'nul\000 ctl\001\033[0m cr\r tab\t\n'; printf 'utf8 \303\251\n'; ` +
		`printf 'err \000\n' >&2; printf '\377\376 invalid\n'; printf 'no newline'`
	stdout := strings.Repeat("a", 40960) + "\n" + "nul\x00 ctl\x01\x1b[0m cr\r tab\t\n" + "utf8 \u00e9\n" + "\xff\xfe invalid\n" + "no newline"
	stderr := "err \x00\n"
	for _, tc := range []struct {
		driver string
		stdout string
	}{
		{"json-file", strings.Replace(stdout, "\xff\xfe", "\ufffd\ufffd", 1)},
		{"local", strings.Replace(stdout, "a\nnul", "anul", 1)},
	} {
		t.Run(tc.driver, func(t *testing.T) {
			m := newTestManager(t, c)
			id := createContainer(t, c, script, tc.driver)
			path := filepath.Join(t.TempDir(), "0.log")
			if err := m.Prepare(path); err != nil {
				t.Fatal(err)
			}
			startContainer(t, c, id)
			if err := m.Start(t.Context(), id, path); err != nil {
				t.Fatal(err)
			}
			waitCopier(t, m, id)

			// What Docker itself returns, demultiplexed by moby's stdcopy.
			rc, err := c.ContainerLogs(t.Context(), id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
			if err != nil {
				t.Fatal(err)
			}
			var dout, derr bytes.Buffer
			if _, err := stdcopy.StdCopy(&dout, &derr, rc); err != nil {
				t.Fatal(err)
			}
			rc.Close()

			got := map[string]*bytes.Buffer{StreamStdout: {}, StreamStderr: {}}
			var records int
			b, _ := os.ReadFile(path)
			for l := range bytes.Lines(b) {
				r, err := ParseRecord(l)
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Text) > MaxRecordText {
					t.Errorf("record of %d bytes", len(r.Text))
				}
				records++
				got[r.Stream].Write(r.Text)
				if !r.Partial {
					got[r.Stream].WriteByte('\n')
				}
			}
			for _, cmp := range []struct{ name, got, want string }{
				{"stdout vs Docker", got[StreamStdout].String(), dout.String()},
				{"stderr vs Docker", got[StreamStderr].String(), derr.String()},
				{"stdout vs written", got[StreamStdout].String(), tc.stdout},
				{"stderr vs written", got[StreamStderr].String(), stderr},
			} {
				if cmp.got != cmp.want {
					t.Errorf("%s: got %q, want %q", cmp.name, abbreviate(cmp.got), abbreviate(cmp.want))
				}
			}
			// 40 KiB: 16 KiB P, 16 KiB P, 8 KiB F; then 4 lines, the
			// last one P; one stderr line.
			if records != 3+4+1 {
				t.Errorf("%d records, want 8", records)
			}
		})
	}
}

func abbreviate(s string) string {
	if len(s) > 200 {
		return s[:60] + fmt.Sprintf("...(%d bytes)...", len(s)-120) + s[len(s)-60:]
	}
	return s
}
