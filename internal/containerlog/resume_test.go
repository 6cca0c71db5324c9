package containerlog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestResumeAtEveryRecord stops the copy after each record in turn, as a
// berth restart does, and checks the resumed file is the whole log once.
func TestResumeAtEveryRecord(t *testing.T) {
	for _, unit := range []time.Duration{time.Nanosecond, 700 * time.Millisecond} {
		f := newFakeDocker()
		f.add(sample(unit)...)
		f.exit()
		dir := t.TempDir()
		full := filepath.Join(dir, "full.log")
		copyAll(t, f, filepath.Join(dir, "state"), full)
		whole, _ := os.ReadFile(full)
		records := bytes.SplitAfter(whole, []byte("\n"))
		records = records[:len(records)-1]

		for k := range len(records) + 1 {
			t.Run(fmt.Sprintf("unit=%v/after=%d", unit, k), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "0.log")
				if err := os.WriteFile(path, bytes.Join(records[:k], nil), 0o640); err != nil {
					t.Fatal(err)
				}
				f.calls = nil
				copyAll(t, f, filepath.Join(t.TempDir(), "state"), path)
				got, _ := os.ReadFile(path)
				if diff := cmp.Diff(string(whole), string(got)); diff != "" {
					t.Errorf("resumed file (-want +got):\n%s", diff)
				}
				if k > 0 {
					last, _ := ParseRecord(records[k-1])
					since := last.Time.Add(-reorderWindow)
					if want := fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()); f.calls[0].Since != want {
						t.Errorf("Since = %q, want %q", f.calls[0].Since, want)
					}
				}
			})
		}
	}
}

// TestResumeAfterRotation: the kubelet rotated the file (Reopen saved the
// position), records j.. went to the new file, then berth restarted.
func TestResumeAfterRotation(t *testing.T) {
	f := newFakeDocker()
	f.add(sample(time.Nanosecond)...)
	f.exit()
	dir := t.TempDir()
	full := filepath.Join(dir, "full.log")
	copyAll(t, f, filepath.Join(dir, "state"), full)
	whole, _ := os.ReadFile(full)
	records := bytes.SplitAfter(whole, []byte("\n"))
	records = records[:len(records)-1]

	for k := range len(records) + 1 {
		for j := k; j <= len(records); j++ {
			t.Run(fmt.Sprintf("rotated=%d/after=%d", k, j), func(t *testing.T) {
				old := bytes.Join(records[:k], nil)
				tl, err := scanTail(bytes.NewReader(old), int64(len(old)))
				if err != nil {
					t.Fatal(err)
				}
				state := filepath.Join(t.TempDir(), "state")
				if err := savePosition(filepath.Join(state, "c1"), tl.pos); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(t.TempDir(), "0.log")
				if err := os.WriteFile(path, bytes.Join(records[k:j], nil), 0o640); err != nil {
					t.Fatal(err)
				}
				copyAll(t, f, state, path)
				got, _ := os.ReadFile(path)
				if diff := cmp.Diff(string(bytes.Join(records[k:], nil)), string(got)); diff != "" {
					t.Errorf("resumed file (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestManagerRestart(t *testing.T) {
	f := newFakeDocker()
	state := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(t.TempDir(), "0.log")
	stop := make(chan struct{})
	wg := feed(f, stop)
	for range 3 {
		m, err := New(Options{Docker: f, StateDir: state})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(t.Context(), "c1", path); err != nil {
			t.Fatal(err)
		}
		time.Sleep(40 * time.Millisecond)
		m.Close()
		time.Sleep(10 * time.Millisecond) // berth is down; the container writes on
	}
	close(stop)
	wg.Wait()
	f.exit()
	copyAll(t, f, state, path)
	if diff := cmp.Diff(wantLines(f.msgs), readLines(t, path), cmp.AllowUnexported(line{})); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}
