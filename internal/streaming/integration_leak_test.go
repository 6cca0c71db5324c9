package streaming_test

import (
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/streaming"
	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// goroutineSlack allows for the Docker client's and the HTTP clients' idle
// keep-alive connections, whose number varies.
const goroutineSlack = 4

// TestNoGoroutineLeak: after 50 ExecSync and 20 streaming execs the
// goroutine count is back where it was.
func TestNoGoroutineLeak(t *testing.T) {
	d := requireDocker(t)
	s := startServer(t, d, nil)
	id := runContainer(t, d, []string{"sleep", "3600"}, nil)
	ctx := t.Context()

	execSync := func() {
		out, _, code, err := streaming.ExecSync(ctx, d, id, []string{"echo", "hi"}, 10*time.Second, streaming.ExecSyncOutputLimit)
		if err != nil || code != 0 || string(out) != "hi\n" {
			t.Fatalf("ExecSync = %q, %d, %v", out, code, err)
		}
	}
	execStream := func(tr string) {
		var out syncBuffer
		u := execURL(t, s, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"cat"}, Stdin: true, Stdout: true, Stderr: true})
		opts := remotecommand.StreamOptions{Stdin: strings.NewReader("hi\n"), Stdout: &out, Stderr: &out}
		if err := stream(ctx, tr, u, opts); err != nil || out.String() != "hi\n" {
			t.Fatalf("exec over %s = %q, %v", tr, out.String(), err)
		}
	}

	// Warm up: the clients' pools and the runtime's lazily started parts.
	execSync()
	for _, tr := range transports {
		execStream(tr)
	}
	time.Sleep(100 * time.Millisecond)
	baseline := runtime.NumGoroutine()

	for range 50 {
		execSync()
	}
	for i := range 20 {
		execStream(transports[i%len(transports)])
	}

	deadline := time.Now().Add(time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline+goroutineSlack {
			t.Logf("%d goroutines, baseline %d", n, baseline)
			return
		}
		if time.Now().After(deadline) {
			var dump strings.Builder
			pprof.Lookup("goroutine").WriteTo(&dump, 1)
			t.Fatalf("%d goroutines, baseline %d (slack %d):\n%s", n, baseline, goroutineSlack, dump.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
