package containerlog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// recs builds a log file: "o3" is a stdout record at ts0+3ns, "e5P" a
// partial stderr one at ts0+5ns.
func recs(spec string) []byte {
	var b []byte
	for _, f := range strings.Fields(spec) {
		stream := StreamStdout
		if f[0] == 'e' {
			stream = StreamStderr
		}
		partial := strings.HasSuffix(f, "P")
		var n time.Duration
		for _, c := range strings.TrimSuffix(f[1:], "P") {
			n = n*10 + time.Duration(c-'0')
		}
		b = AppendRecord(b, ts0.Add(n), stream, partial, []byte(f))
	}
	return b
}

func at(n int, count int) mark { return mark{Time: ts0.Add(time.Duration(n)), Count: count} }

func TestScanTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		file []byte
		want position
		open []string
	}{
		{"empty", nil, position{}, nil},
		{"one", recs("o1"), position{Last: StreamStdout, Stdout: at(1, 1)}, []string{StreamStdout}},
		{"distinct", recs("o1 o2 o3"), position{Last: StreamStdout, Stdout: at(3, 1)}, nil},
		{"pieces share a timestamp", recs("o1 o2P o2P o2"), position{Last: StreamStdout, Stdout: at(2, 3)}, nil},
		{"both streams", recs("e1 o1 o2 e3 o4"), position{Last: StreamStdout, Stdout: at(4, 1), Stderr: at(3, 1)}, nil},
		{"stderr written out of order", recs("o1 e1 o5 e4"), position{Last: StreamStderr, Stdout: at(5, 1), Stderr: at(4, 1)}, nil},
		{"interleaved pieces", recs("o0 e0 o2P e3 o2P e3P o2"), position{Last: StreamStdout, Stdout: at(2, 3), Stderr: at(3, 2)}, nil},
		{"whole file at one time", recs("o2P o2P o2P"), position{Last: StreamStdout, Stdout: at(2, 3)}, []string{StreamStdout}},
		{"foreign lines skipped", append(recs("o1 o2"), "not a record\n"...), position{Last: StreamStdout, Stdout: at(2, 1)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := scanTail(bytes.NewReader(tc.file), int64(len(tc.file)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.pos); diff != "" {
				t.Errorf("position (-want +got):\n%s", diff)
			}
			var open []string
			for _, s := range []string{StreamStdout, StreamStderr} {
				if got.open[s] {
					open = append(open, s)
				}
			}
			if diff := cmp.Diff(tc.open, open); diff != "" {
				t.Errorf("open streams (-want +got):\n%s", diff)
			}
			if got.size != int64(len(tc.file)) {
				t.Errorf("size %d, want %d", got.size, len(tc.file))
			}
		})
	}
}

func TestScanTailTornAndLong(t *testing.T) {
	// A record of 16 KiB spans the 64 KiB read chunks; a torn last line
	// (a crash mid-write) is cut off.
	var file []byte
	for i := range 20 {
		file = AppendRecord(file, ts0.Add(time.Duration(i/3)), StreamStdout, i%3 != 2, bytes.Repeat([]byte{'a'}, MaxRecordText))
	}
	whole := len(file)
	file = append(file, "2026-11-26T21:35:18.7307Z stdout F cut he"...)
	got, err := scanTail(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	want := position{Last: StreamStdout, Stdout: at(6, 2)}
	if diff := cmp.Diff(want, got.pos); diff != "" {
		t.Errorf("position (-want +got):\n%s", diff)
	}
	if got.size != int64(whole) {
		t.Errorf("size %d, want %d", got.size, whole)
	}
}

func TestResumeFrom(t *testing.T) {
	saved := position{Last: StreamStdout, Stdout: at(5, 2), Stderr: at(4, 1)}
	for _, tc := range []struct {
		name string
		file []byte
		want position
	}{
		{"empty file: saved", nil, saved},
		{"pieces go on across the rotation", recs("o5P o5"), position{Last: StreamStdout, Stdout: at(5, 4), Stderr: at(4, 1)}},
		{"newer record", recs("o6"), position{Last: StreamStdout, Stdout: at(6, 1), Stderr: at(4, 1)}},
		{"stderr only", recs("e7"), position{Last: StreamStderr, Stdout: at(5, 2), Stderr: at(7, 1)}},
		{"resolved in the file", recs("o1 o5"), position{Last: StreamStdout, Stdout: at(5, 1), Stderr: at(4, 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl, err := scanTail(bytes.NewReader(tc.file), int64(len(tc.file)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, resumeFrom(tl, saved)); diff != "" {
				t.Errorf("position (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPositionFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "id")
	if p, err := loadPosition(dir); err != nil || p != (position{}) {
		t.Fatalf("missing position = %+v, %v", p, err)
	}
	want := position{Last: StreamStderr, Stdout: at(1, 1), Stderr: at(2, 3)}
	if err := savePosition(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadPosition(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("position (-want +got):\n%s", diff)
	}
	b, _ := os.ReadFile(filepath.Join(dir, positionFile))
	t.Logf("position file: %s", b)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if got := want.since(); got != "1795728916.730708313" {
		t.Errorf("since = %q", got)
	}
}
