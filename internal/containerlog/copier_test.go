package containerlog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
)

// waitCopier waits for the container's copier to end by itself.
func waitCopier(t testing.TB, m *Manager, id string) {
	t.Helper()
	c := m.copier(id)
	if c == nil {
		return
	}
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("copier of %s did not end", id)
	}
}

// copyAll runs one copier over f's log into path until it ends.
func copyAll(t *testing.T, f *fakeDocker, stateDir, path string) {
	t.Helper()
	m, err := New(Options{Docker: f, StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Start(t.Context(), "c1", path); err != nil {
		t.Fatal(err)
	}
	waitCopier(t, m, "c1")
}

// sample is a log with what makes resuming hard: pieces sharing a
// timestamp, stdout and stderr at the same time, stderr stored out of
// timestamp order, binary bytes and a last line without newline.
func sample(unit time.Duration) []fakeMsg {
	at := func(n int) time.Time { return ts0.Add(time.Duration(n) * unit) }
	long := strings.Repeat("L", MaxRecordText)
	return []fakeMsg{
		{StreamStdout, at(1), "a\n"},
		{StreamStderr, at(1), "b\n"},
		{StreamStdout, at(3), long},
		{StreamStdout, at(3), long},
		{StreamStderr, at(2), "c\n"},
		{StreamStdout, at(3), "end of long\n"},
		{StreamStderr, at(5), "d\x00\xff\n"},
		{StreamStdout, at(4), "e\n"},
		{StreamStdout, at(6), "x"},
		{StreamStdout, at(6), "y\n"},
		{StreamStdout, at(7), "\n"},
		{StreamStderr, at(6), "z no newline"},
	}
}

func TestCopyWholeLog(t *testing.T) {
	f := newFakeDocker()
	f.add(sample(time.Nanosecond)...)
	f.add(fakeMsg{StreamStdout, ts0.Add(time.Second), strings.Repeat("9", 40*1024) + "\n"}) // longer than json-file sends
	f.exit()
	path := filepath.Join(t.TempDir(), "0.log")
	copyAll(t, f, filepath.Join(t.TempDir(), "state"), path)

	if diff := cmp.Diff(wantLines(f.msgs), readLines(t, path), cmp.AllowUnexported(line{})); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	b, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	for i, want := range []string{
		"2026-11-26T21:35:18.730708312Z stdout F a",
		"2026-11-26T21:35:18.730708312Z stderr F b",
		"2026-11-26T21:35:18.730708314Z stdout P LLLL",
		"2026-11-26T21:35:18.730708314Z stdout P LLLL",
		"2026-11-26T21:35:18.730708313Z stderr F c",
		"2026-11-26T21:35:18.730708314Z stdout F end of long",
		"2026-11-26T21:35:18.730708316Z stderr F d\x00\xff",
		"2026-11-26T21:35:18.730708315Z stdout F e",
		"2026-11-26T21:35:18.730708317Z stdout P x",
		"2026-11-26T21:35:18.730708317Z stdout F y",
		"2026-11-26T21:35:18.730708318Z stdout F ",
		"2026-11-26T21:35:18.730708317Z stderr P z no newline",
		"2026-11-26T21:35:19.730708311Z stdout P 9999",
		"2026-11-26T21:35:19.730708311Z stdout P 9999",
		"2026-11-26T21:35:19.730708311Z stdout F 9999",
	} {
		if i >= len(lines) || !bytes.HasPrefix(lines[i], []byte(want)) {
			t.Fatalf("record %d = %.60q, want %q", i, lines[i], want)
		}
	}
	if len(lines) != 15 {
		t.Errorf("%d records, want 15", len(lines))
	}
	calls := f.logsCalls()
	if len(calls) != 1 || calls[0].Follow || !calls[0].Timestamps || !calls[0].ShowStdout || !calls[0].ShowStderr || calls[0].Since != "" {
		t.Errorf("ContainerLogs calls = %+v", calls)
	}
}

// feed adds numbered lines, some in pieces, on both streams until stop.
func feed(f *fakeDocker, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Go(func() {
		ts := ts0
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ts = ts.Add(time.Microsecond)
			stream := StreamStdout
			if i%5 == 0 {
				stream = StreamStderr
			}
			if i%7 == 0 {
				f.add(fakeMsg{stream, ts, fmt.Sprintf("line %d piece, ", i)}, fakeMsg{stream, ts, "rest\n"})
			} else {
				f.add(fakeMsg{stream, ts, fmt.Sprintf("line %d\n", i)})
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	})
	return &wg
}

func TestReopenLosesNothing(t *testing.T) {
	f := newFakeDocker()
	m := newTestManager(t, f)
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	if err := m.Prepare(path); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wg := feed(f, stop)
	if err := m.Start(t.Context(), "c1", path); err != nil {
		t.Fatal(err)
	}
	var files []string
	for i := range 5 {
		time.Sleep(30 * time.Millisecond)
		rotated := fmt.Sprintf("%s.%d", path, i)
		if err := os.Rename(path, rotated); err != nil {
			t.Fatal(err)
		}
		if err := m.Reopen(t.Context(), "c1"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("no new file after Reopen: %v", err)
		}
		files = append(files, rotated)
	}
	close(stop)
	wg.Wait()
	f.exit()
	waitCopier(t, m, "c1")
	files = append(files, path)
	got := readLines(t, files...)
	if diff := cmp.Diff(wantLines(f.msgs), got, cmp.AllowUnexported(line{})); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	for _, p := range files[:len(files)-1] {
		if fi, _ := os.Stat(p); fi.Size() == 0 {
			t.Errorf("%s is empty: the test did not rotate under load", p)
		}
	}
	t.Logf("%d lines over %d files", len(got), len(files))
}

func TestReopenNotRunning(t *testing.T) {
	f := newFakeDocker()
	f.exit()
	m := newTestManager(t, f)
	if err := m.Reopen(t.Context(), "unknown"); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Reopen of an unknown container = %v, want failed precondition", err)
	}
	path := filepath.Join(t.TempDir(), "0.log")
	if err := m.Start(t.Context(), "c1", path); err != nil {
		t.Fatal(err)
	}
	waitCopier(t, m, "c1")
	if err := m.Reopen(t.Context(), "c1"); !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "c1") {
		t.Errorf("Reopen of an exited container = %v, want failed precondition naming it", err)
	}
}

func TestReconnects(t *testing.T) {
	f := newFakeDocker()
	f.cutEvery = 5 // dockerd "restarts" every 5 messages
	for i := range 40 {
		f.add(fakeMsg{StreamStdout, ts0.Add(time.Duration(i) * time.Second), fmt.Sprintf("%d\n", i)})
	}
	m := newTestManager(t, f)
	path := filepath.Join(t.TempDir(), "0.log")
	if err := m.Start(t.Context(), "c1", path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(readLines(t, path)) < 40 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	f.exit()
	waitCopier(t, m, "c1")
	if diff := cmp.Diff(wantLines(f.msgs), readLines(t, path), cmp.AllowUnexported(line{})); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if calls := f.logsCalls(); len(calls) < 8 {
		t.Errorf("%d ContainerLogs calls, want a reconnect per cut", len(calls))
	}
}

func TestStartIsIdempotent(t *testing.T) {
	f := newFakeDocker()
	m := newTestManager(t, f)
	path := filepath.Join(t.TempDir(), "0.log")
	for range 3 {
		if err := m.Start(t.Context(), "c1", path); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if calls := f.logsCalls(); len(calls) != 1 {
		t.Errorf("%d ContainerLogs calls, want 1", len(calls))
	}
}

func TestRecordReachesFileQuickly(t *testing.T) {
	f := newFakeDocker()
	m := newTestManager(t, f)
	path := filepath.Join(t.TempDir(), "0.log")
	if err := m.Start(t.Context(), "c1", path); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		start := time.Now()
		f.add(fakeMsg{StreamStdout, time.Now(), fmt.Sprintf("hello %d\n", i)})
		for {
			if b, _ := os.ReadFile(path); bytes.Contains(b, fmt.Appendf(nil, "hello %d\n", i)) {
				break
			}
			if time.Since(start) > 2*time.Second {
				t.Fatal("record not in the file after 2s")
			}
			time.Sleep(2 * time.Millisecond)
		}
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("record took %v to reach the file", d)
		}
		time.Sleep(200 * time.Millisecond) // idle again
	}
}

func TestTTY(t *testing.T) {
	f := newFakeDocker()
	f.tty = true
	f.add(fakeMsg{StreamStdout, ts0, "hi\r\n"}, fakeMsg{StreamStdout, ts0.Add(1), "bye"})
	f.exit()
	path := filepath.Join(t.TempDir(), "0.log")
	copyAll(t, f, filepath.Join(t.TempDir(), "state"), path)
	want := []line{{stream: StreamStdout, text: "hi"}, {stream: StreamStdout, text: "bye", partial: true}}
	if diff := cmp.Diff(want, readLines(t, path), cmp.AllowUnexported(line{})); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestCopierEndsWhenContainerGone(t *testing.T) {
	f := newFakeDocker()
	f.gone = true
	m := newTestManager(t, f)
	if err := m.Start(t.Context(), "c1", filepath.Join(t.TempDir(), "0.log")); err != nil {
		t.Fatal(err)
	}
	waitCopier(t, m, "c1")
}

func TestForget(t *testing.T) {
	f := newFakeDocker()
	m := newTestManager(t, f)
	path := filepath.Join(t.TempDir(), "0.log")
	if err := m.Start(t.Context(), "c1", path); err != nil {
		t.Fatal(err)
	}
	f.add(fakeMsg{StreamStdout, ts0, "x\n"})
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Reopen(t.Context(), "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.stateDir, "c1", positionFile)); err != nil {
		t.Fatalf("no position after Reopen: %v", err)
	}
	if err := m.Forget("c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.stateDir, "c1")); !os.IsNotExist(err) {
		t.Errorf("state left after Forget: %v", err)
	}
	if m.copier("c1") != nil {
		t.Error("copier runs after Forget")
	}
	if err := m.Forget("../x"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Forget(../x) = %v", err)
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestStopLeavesNothing(t *testing.T) {
	runtime.GC()
	goroutines, fds := runtime.NumGoroutine(), countFDs(t)

	m, err := New(Options{Docker: newFakeDocker(), StateDir: filepath.Join(t.TempDir(), "state")})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var fakes []*fakeDocker
	stop := make(chan struct{})
	var feeders []*sync.WaitGroup
	for i := range 10 {
		f := newFakeDocker()
		fakes = append(fakes, f)
		feeders = append(feeders, feed(f, stop))
		m.docker = f // each copier keeps the Source it started with
		id := fmt.Sprintf("c%d", i)
		if err := m.Start(t.Context(), id, filepath.Join(dir, id, "0.log")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if err := m.Reopen(t.Context(), "c3"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		m.Stop(fmt.Sprintf("c%d", i))
	}
	m.Close()
	close(stop)
	for _, wg := range feeders {
		wg.Wait()
	}
	for i := range fakes {
		if len(readLines(t, filepath.Join(dir, fmt.Sprintf("c%d", i), "0.log"))) == 0 && i != 3 {
			t.Errorf("c%d copied nothing", i)
		}
	}

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, goroutines, buf[:runtime.Stack(buf, true)])
	}
	if n := countFDs(t); n != fds {
		t.Errorf("%d open files after Close, %d before", n, fds)
	}
	if err := m.Start(t.Context(), "c1", filepath.Join(dir, "c1", "0.log")); !errdefs.IsUnavailable(err) {
		t.Errorf("Start after Close = %v, want unavailable", err)
	}
}

// TestRotationReplaySkipped: following its json-file across a rotation,
// Docker sends again a run of records it had sent, up to the last one;
// each record is written once.
func TestRotationReplaySkipped(t *testing.T) {
	f := newFakeDocker()
	s := sample(time.Nanosecond)
	later := []fakeMsg{
		{StreamStdout, ts0.Add(time.Second), "after\n"},
		{StreamStderr, ts0.Add(time.Second), "after too\n"},
	}
	f.add(s...)
	f.add(s[5:]...) // the replay: from "end of long" to the last record
	f.add(later...)
	f.exit()
	path := filepath.Join(t.TempDir(), "0.log")
	copyAll(t, f, filepath.Join(t.TempDir(), "state"), path)
	want := wantLines(append(append([]fakeMsg{}, s...), later...))
	if diff := cmp.Diff(want, readLines(t, path), cmp.AllowUnexported(line{})); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}
