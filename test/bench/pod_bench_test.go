//go:build linux

// Package bench measures how long berth takes to start and tear down a pod
// against a real dockerd, next to the same work done with Docker calls and
// CNI directly. It needs root, dockerd, the berth.local images (hack/images.sh)
// and the CNI plugins, and runs only with BERTH_INTEGRATION=1:
//
//	BERTH_INTEGRATION=1 go test -run '^$' -bench PodStartTeardown -benchtime 1x -timeout 30m ./test/bench/
//
// One invocation does one full interleaved run, whatever b.N is.
// BERTH_BENCH_SAMPLES (default 30) and BERTH_BENCH_WARMUP (default 2) set
// the rounds; BERTH_BENCH_SETTLE_MS (default 0) idles before each pod, to
// see whether one variant's leftover daemon work slows the next. BenchmarkDirectVariants (-bench DirectVariants) measures the
// candidate direct sequences that sequence (b) was chosen from.
package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// opTimeout bounds one pod's start or teardown.
const opTimeout = time.Minute

// pod is a started pod and how to tear it down.
type pod struct {
	pauseID, appID string
	teardown       func(context.Context) error
}

// variant is one way of running pods.
type variant struct {
	name  string
	start func(ctx context.Context, name string) (pod, error)
}

func (d *direct) variant(name string, o directOpts) variant {
	return variant{name: name, start: func(ctx context.Context, podName string) (pod, error) {
		p, err := d.start(ctx, podName, o)
		return pod{p.pauseID, p.appID, func(ctx context.Context) error { return d.teardown(ctx, p, o) }}, err
	}}
}

func (b *berth) variant(name string) variant {
	return variant{name: name, start: func(ctx context.Context, podName string) (pod, error) {
		p, err := b.start(ctx, podName)
		return pod{p.sandboxID, p.containerID, func(ctx context.Context) error { return b.teardown(ctx, p) }}, err
	}}
}

// sample is one pod's measurement.
type sample struct {
	start, teardown time.Duration
	steps           *steps
}

// BenchmarkPodStartTeardown starts and tears down pods through berth's CRI
// socket, interleaved with (a) a dockershim-like and (b) the fastest
// direct sequence of Docker calls and CNI, and reports the medians and
// berth's ratios to both.
func BenchmarkPodStartTeardown(b *testing.B) {
	e := newEnv(b)
	rec := &recorder{}
	d := newDirect(b, e, rec)
	srv := startBerth(b, e, rec)
	variants := []variant{
		d.variant("a", dockershimOpts),
		d.variant("b", fastestOpts),
		srv.variant("berth"),
	}
	res := runInterleaved(b, e, rec, variants)
	checkClean(b, e, srv, d)

	med := func(v string, f func(sample) time.Duration) float64 { return ms(median(durations(res[v], f))) }
	start := func(s sample) time.Duration { return s.start }
	teardown := func(s sample) time.Duration { return s.teardown }
	for _, v := range variants {
		b.ReportMetric(med(v.name, start), "start-"+v.name+"-ms")
		b.ReportMetric(med(v.name, teardown), "teardown-"+v.name+"-ms")
	}
	ratios := []struct {
		metric      string
		value, goal float64
	}{
		{"start-ratio-a", med("berth", start) / med("a", start), 0.65},
		{"teardown-ratio-a", med("berth", teardown) / med("a", teardown), 1.0},
		{"start-ratio-b", med("berth", start) / med("b", start), 1.10},
		{"teardown-ratio-b", med("berth", teardown) / med("b", teardown), 0},
	}
	for _, r := range ratios {
		b.ReportMetric(r.value, r.metric)
	}
	b.ReportMetric(0, "ns/op") // the run's wall time says nothing

	// The testing package keeps only ten lines of a benchmark's log: the
	// table goes there, the breakdown to stdout.
	var out strings.Builder
	summary(&out, variants, res)
	for i, r := range ratios {
		phase, against, _ := strings.Cut(r.metric, "-ratio-")
		if i%2 == 0 {
			fmt.Fprintf(&out, "\nberth/(%s):", against)
		}
		fmt.Fprintf(&out, " %s %.3f", phase, r.value)
		if r.goal > 0 {
			verdict := "met"
			if r.value > r.goal {
				verdict = "MISSED"
			}
			fmt.Fprintf(&out, " (target <= %.2f: %s)", r.goal, verdict)
		}
	}
	b.Log(out.String())
	printBreakdowns(variants, res)
}

// BenchmarkDirectVariants runs candidate direct sequences interleaved:
// sequence (b) is the fastest of them. Start and teardown options vary
// one at a time from "netoff".
func BenchmarkDirectVariants(b *testing.B) {
	e := newEnv(b)
	rec := &recorder{}
	d := newDirect(b, e, rec)
	netoff := directOpts{netDisabled: true}
	with := func(f func(*directOpts)) directOpts { o := netoff; f(&o); return o }
	variants := []variant{
		d.variant("a", dockershimOpts),
		d.variant("netoff", netoff),
		d.variant("netoff+cgpid", with(func(o *directOpts) { o.pidFromCgroup = true })),
		d.variant("netoff+lognone", with(func(o *directOpts) { o.pauseLogNone = true })),
		d.variant("netoff/td-force", with(func(o *directOpts) { o.teardown = teardownForce })),
		d.variant("netoff/td-pausefirst", with(func(o *directOpts) { o.teardown = teardownPauseFirst })),
		d.variant("netoff/td-dellast", with(func(o *directOpts) { o.teardown = teardownDelLast })),
		d.variant("netoff/td-pausefirst-dellast", with(func(o *directOpts) { o.teardown = teardownPauseFirstDelLast })),
		d.variant("netoff/td-kill", with(func(o *directOpts) { o.teardown = teardownKill })),
		d.variant("b", fastestOpts),
	}
	res := runInterleaved(b, e, rec, variants)
	checkClean(b, e, nil, d)
	b.ReportMetric(0, "ns/op")
	// More lines than the testing package keeps of a benchmark's log.
	var out strings.Builder
	summary(&out, variants, res)
	fmt.Println(out.String())
	printBreakdowns(variants, res)
}

// runInterleaved runs warm-up rounds, then the sample rounds, each round
// starting and tearing down one pod with every variant in turn.
func runInterleaved(b *testing.B, e *env, rec *recorder, variants []variant) map[string][]sample {
	b.Helper()
	samples := envInt(b, "BERTH_BENCH_SAMPLES", 30)
	warmup := envInt(b, "BERTH_BENCH_WARMUP", 2)
	settle := time.Duration(envInt(b, "BERTH_BENCH_SETTLE_MS", 0)) * time.Millisecond
	res := map[string][]sample{}
	for round := range warmup + samples {
		for _, v := range variants {
			time.Sleep(settle)
			name := fmt.Sprintf("bench-%s-%s-%d", e.runID, strings.NewReplacer("+", "-", "/", "-").Replace(v.name), round)
			s, err := measure(e, rec, v, name)
			if err != nil {
				b.Fatalf("%s, round %d: %v", v.name, round, err)
			}
			if round >= warmup {
				res[v.name] = append(res[v.name], s)
			}
		}
	}
	return res
}

// measure starts a pod with v, checks it outside the timed parts, and
// tears it down.
func measure(e *env, rec *recorder, v variant, name string) (s sample, _ error) {
	rec.begin()
	defer func() { s.steps = rec.end() }()

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	rec.setScope("start")
	t0 := time.Now()
	p, err := v.start(ctx, name)
	s.start = time.Since(t0)
	rec.setScope("")
	if err != nil {
		if p.teardown != nil {
			err = errors.Join(err, p.teardown(ctx))
		}
		return s, fmt.Errorf("start: %w", err)
	}
	if err := checkPod(ctx, e, p); err != nil {
		return s, errors.Join(err, p.teardown(ctx))
	}

	ctx, cancel = context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	rec.setScope("teardown")
	t0 = time.Now()
	err = p.teardown(ctx)
	s.teardown = time.Since(t0)
	rec.setScope("")
	if err != nil {
		return s, fmt.Errorf("teardown: %w", err)
	}
	return s, nil
}

// checkPod checks that a pod is what every variant must make: the app
// running in the pause container's network namespace, with an address
// from host-local for the pause container.
func checkPod(ctx context.Context, e *env, p pod) error {
	pid := func(id string) (int, error) {
		res, err := e.docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return 0, err
		}
		if res.Container.State == nil || !res.Container.State.Running {
			return 0, fmt.Errorf("container %s is not running", id)
		}
		return res.Container.State.Pid, nil
	}
	pausePid, err := pid(p.pauseID)
	if err != nil {
		return fmt.Errorf("check pod: %w", err)
	}
	appPid, err := pid(p.appID)
	if err != nil {
		return fmt.Errorf("check pod: %w", err)
	}
	for _, ns := range []string{"net", "ipc", "pid"} {
		want, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pausePid, ns))
		got, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", appPid, ns))
		if err := errors.Join(err1, err2); err != nil || got != want {
			return fmt.Errorf("check pod: app %s namespace %s, want the pause container's %s (%v)", ns, got, want, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(e.ipamDir, networkName))
	if err != nil {
		return fmt.Errorf("check pod: %w", err)
	}
	for _, d := range entries {
		if data, err := os.ReadFile(filepath.Join(e.ipamDir, networkName, d.Name())); err == nil && strings.HasPrefix(string(data), p.pauseID) {
			return nil
		}
	}
	return fmt.Errorf("check pod: no host-local address for %s", p.pauseID)
}

// checkClean fails the benchmark if the run left anything: containers,
// host-local allocations, CNI cache entries, berth sandbox directories.
func checkClean(b *testing.B, e *env, srv *berth, d *direct) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	left, err := e.leftovers(ctx)
	if err != nil {
		b.Fatal(err)
	}
	dirs := []string{filepath.Join(d.cacheDir, "results")}
	if srv != nil {
		dirs = append(dirs, filepath.Join(srv.root, "cni-cache", "results"), filepath.Join(srv.root, "sandboxes"))
	}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			b.Fatal(err)
		}
		for _, d := range entries {
			left = append(left, filepath.Join(dir, d.Name()))
		}
	}
	if len(left) > 0 {
		b.Errorf("the run left:\n%s", strings.Join(left, "\n"))
	}
}

func envInt(tb testing.TB, key string, def int) int {
	tb.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		tb.Fatalf("%s=%q: want a number >= 0", key, v)
	}
	return n
}
