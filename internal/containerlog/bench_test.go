package containerlog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// BenchmarkCopyVsDocker compares berth's copy of a finished container's
// 100,000-line log into a CRI file with reading Docker's raw log stream
// (the same request, without follow, into io.Discard), measured in the same
// run. MB/s are of Docker's stream for both; ratio-vs-docker is berth's
// throughput over Docker's.
func BenchmarkCopyVsDocker(b *testing.B) {
	c := dockerForTest(b)
	id := createContainer(b, c, "seq 1 100000", "")
	startContainer(b, c, id)
	waitExit(b, c, id)
	ctx := context.Background()
	dir := b.TempDir()

	readDocker := func() (int64, time.Duration) {
		start := time.Now()
		rc, err := c.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true})
		if err != nil {
			b.Fatal(err)
		}
		defer rc.Close()
		n, err := io.Copy(io.Discard, rc)
		if err != nil {
			b.Fatal(err)
		}
		return n, time.Since(start)
	}
	copyBerth := func(i int) time.Duration {
		m, err := New(Options{Docker: c, StateDir: filepath.Join(dir, "state")})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		path := filepath.Join(dir, fmt.Sprintf("%d.log", i))
		start := time.Now()
		if err := m.Prepare(path); err != nil {
			b.Fatal(err)
		}
		if err := m.Start(ctx, id, path); err != nil {
			b.Fatal(err)
		}
		waitCopier(b, m, id)
		d := time.Since(start)
		content, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		if n := bytes.Count(content, []byte("\n")); n != 100000 {
			b.Fatalf("%d records, want 100000", n)
		}
		os.Remove(path)
		return d
	}

	var streamBytes int64
	var dockerTime, berthTime time.Duration
	b.ResetTimer()
	for i := range b.N {
		// Alternate the order so that neither always finds a warmer cache.
		if i%2 == 0 {
			n, d := readDocker()
			streamBytes, dockerTime = streamBytes+n, dockerTime+d
			berthTime += copyBerth(i)
		} else {
			berthTime += copyBerth(i)
			n, d := readDocker()
			streamBytes, dockerTime = streamBytes+n, dockerTime+d
		}
	}
	b.StopTimer()
	dockerMBs := float64(streamBytes) / 1e6 / dockerTime.Seconds()
	berthMBs := float64(streamBytes) / 1e6 / berthTime.Seconds()
	b.ReportMetric(dockerMBs, "docker-MB/s")
	b.ReportMetric(berthMBs, "berth-MB/s")
	b.ReportMetric(berthMBs/dockerMBs, "ratio-vs-docker")
}

// BenchmarkCopyFake is berth's side alone: 100,000 lines from an in-memory
// Docker stream into a CRI file.
func BenchmarkCopyFake(b *testing.B) {
	f := newFakeDocker()
	var size int64
	for i := range 100000 {
		m := fakeMsg{StreamStdout, ts0.Add(time.Duration(i) * time.Microsecond), fmt.Sprintf("%d\n", i+1)}
		size += int64(len(dockerFrame(nil, m, false)))
		f.add(m)
	}
	f.exit()
	dir := b.TempDir()
	b.SetBytes(size)
	for i := range b.N {
		path := filepath.Join(dir, fmt.Sprintf("%d.log", i))
		m, err := New(Options{Docker: f, StateDir: filepath.Join(dir, "state")})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Start(context.Background(), "c1", path); err != nil {
			b.Fatal(err)
		}
		waitCopier(b, m, "c1")
		m.Close()
		os.Remove(path)
	}
}
