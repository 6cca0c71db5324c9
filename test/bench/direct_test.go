//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/network"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// directOpts chooses how a direct sequence drives Docker. The zero value
// is the dockershim-like sequence (a).
type directOpts struct {
	// netDisabled creates the pause container with NetworkDisabled (no
	// libnetwork sandbox at all) rather than on Docker's "none" network.
	netDisabled bool
	// pidFromCgroup reads the pause pid from the container's cgroup
	// instead of inspecting the container.
	pidFromCgroup bool
	// pauseLogNone gives the pause container the "none" log driver: it
	// never writes, so no json-file log and copier are set up.
	pauseLogNone bool
	teardown     teardownMode
}

// teardownMode is how a direct sequence removes a pod. Every mode ends
// with no container and no IP allocation left.
type teardownMode int

const (
	// stop app (timeout 0), CNI DEL, stop pause, remove app, remove pause.
	teardownStop teardownMode = iota
	// remove -f app, CNI DEL, remove -f pause.
	teardownForce
	// CNI DEL, remove -f pause (the pod's PID namespace, and the app
	// with it, dies with its init), remove -f app.
	teardownPauseFirst
	// remove -f app, remove -f pause, CNI DEL without the namespace (the
	// kernel deletes the veth with the namespace).
	teardownDelLast
	// remove -f pause, remove -f app, CNI DEL without the namespace.
	teardownPauseFirstDelLast
	// kill -9 pause (the app dies with the PID namespace; Docker answers
	// once pause has exited), CNI DEL without the namespace, remove -f
	// app, remove -f pause.
	teardownKill
)

var (
	// dockershimOpts is sequence (a).
	dockershimOpts = directOpts{}
	// fastestOpts is sequence (b), the fastest BenchmarkDirectVariants
	// found on Engine 20.10: NetworkDisabled takes a third off the pod's
	// start (no libnetwork sandbox); killing pause takes the app with it
	// and DEL without the namespace skips the veth, nearly halving the
	// teardown. The pid from the cgroup saves only an inspect (~1 ms).
	fastestOpts = directOpts{netDisabled: true, pidFromCgroup: true, teardown: teardownKill}
)

// direct runs pods with Docker calls and CNI, without berth. It uses the
// same network config as berth, through a network.Manager of its own.
type direct struct {
	env      *env
	rec      *recorder
	net      *network.Manager
	cacheDir string // the Manager's CNI cache

	mu   sync.Mutex
	live map[string]network.Attachment // CNI attachments not yet deleted
}

// newDirect returns a direct runner whose CNI attachments still held are
// deleted when tb ends; the env's cleanup removes containers left.
func newDirect(tb testing.TB, e *env, rec *recorder) *direct {
	tb.Helper()
	cacheDir := filepath.Join(tb.TempDir(), "cni-cache")
	m, err := network.New(network.Options{ConfDir: e.confDir, BinDirs: e.binDirs, CacheDir: cacheDir})
	if err != nil {
		tb.Fatal(err)
	}
	d := &direct{env: e, rec: rec, net: m, cacheDir: cacheDir, live: map[string]network.Attachment{}}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		d.mu.Lock()
		defer d.mu.Unlock()
		for id, a := range d.live {
			a.NetNS = ""
			if err := d.net.Teardown(ctx, a); err != nil {
				tb.Errorf("cleanup: CNI DEL of %s: %v", id, err)
			}
		}
	})
	return d
}

// directPod is a pod a direct sequence started.
type directPod struct {
	pauseID, appID string
	att            network.Attachment
}

func (d *direct) labels() map[string]string {
	return map[string]string{runLabel: d.env.runID}
}

// start creates and starts the pause container, attaches its network
// namespace with CNI, then creates and starts the app container in the
// pause container's namespaces.
func (d *direct) start(ctx context.Context, name string, o directOpts) (directPod, error) {
	var p directPod
	pause := &container.Config{
		Image: pauseImage, Hostname: name, Labels: d.labels(),
		Healthcheck:     &container.HealthConfig{Test: []string{"NONE"}},
		NetworkDisabled: o.netDisabled,
	}
	// As berth makes it, with the CRI config of berth's pods.
	pauseHost := &container.HostConfig{
		NetworkMode: "none", IpcMode: container.IPCModeShareable, SecurityOpt: []string{"seccomp=unconfined"},
	}
	if o.pauseLogNone {
		pauseHost.LogConfig = container.LogConfig{Type: "none"}
	}
	if err := d.rec.step("pause create", func() error {
		res, err := d.env.docker.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name + "_pause", Config: pause, HostConfig: pauseHost})
		p.pauseID = res.ID
		return err
	}); err != nil {
		return p, fmt.Errorf("create pause container: %w", err)
	}
	if err := d.rec.step("pause start", func() error {
		_, err := d.env.docker.ContainerStart(ctx, p.pauseID, client.ContainerStartOptions{})
		return err
	}); err != nil {
		return p, fmt.Errorf("start pause container %s: %w", p.pauseID, err)
	}
	var pid int
	if o.pidFromCgroup {
		if err := d.rec.step("pause pid (cgroup)", func() error {
			var err error
			pid, err = cgroupPid(p.pauseID)
			return err
		}); err != nil {
			return p, err
		}
	} else {
		if err := d.rec.step("pause inspect", func() error {
			res, err := d.env.docker.ContainerInspect(ctx, p.pauseID, client.ContainerInspectOptions{})
			if err == nil && res.Container.State != nil {
				pid = res.Container.State.Pid
			}
			return err
		}); err != nil {
			return p, fmt.Errorf("inspect pause container %s: %w", p.pauseID, err)
		}
	}
	if pid == 0 {
		return p, fmt.Errorf("pause container %s has no pid", p.pauseID)
	}
	p.att = network.Attachment{
		ID: p.pauseID, NetNS: fmt.Sprintf("/proc/%d/ns/net", pid),
		PodName: name, PodNamespace: d.env.namespace, PodUID: "uid-" + name,
	}
	d.mu.Lock()
	d.live[p.pauseID] = p.att
	d.mu.Unlock()
	if err := d.rec.step("cni add", func() error {
		_, err := d.net.Setup(ctx, p.att)
		return err
	}); err != nil {
		return p, err
	}
	join := "container:" + p.pauseID
	app := &container.Config{
		Image: busyboxImage, Entrypoint: []string{"sleep", "3600"}, Labels: d.labels(),
		Healthcheck: &container.HealthConfig{Test: []string{"NONE"}},
	}
	appHost := &container.HostConfig{
		NetworkMode: container.NetworkMode(join), IpcMode: container.IpcMode(join), PidMode: container.PidMode(join),
		SecurityOpt: []string{"seccomp=unconfined"}, MaskedPaths: maskedPaths, ReadonlyPaths: readonlyPaths,
	}
	if err := d.rec.step("app create", func() error {
		res, err := d.env.docker.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name + "_app", Config: app, HostConfig: appHost})
		p.appID = res.ID
		return err
	}); err != nil {
		return p, fmt.Errorf("create app container: %w", err)
	}
	if err := d.rec.step("app start", func() error {
		_, err := d.env.docker.ContainerStart(ctx, p.appID, client.ContainerStartOptions{})
		return err
	}); err != nil {
		return p, fmt.Errorf("start app container %s: %w", p.appID, err)
	}
	return p, nil
}

// teardown removes the pod's containers and its CNI attachment.
func (d *direct) teardown(ctx context.Context, p directPod, o directOpts) error {
	stop := func(name, id string) error {
		return d.rec.step(name+" stop", func() error {
			timeout := 0
			_, err := d.env.docker.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &timeout})
			return err
		})
	}
	remove := func(name, id string, force bool) error {
		step := name + " remove"
		if force {
			step += " -f"
		}
		return d.rec.step(step, func() error {
			_, err := d.env.docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: force, RemoveVolumes: true})
			return err
		})
	}
	del := func(netns string) error {
		a := p.att
		a.NetNS = netns
		if err := d.rec.step("cni del", func() error { return d.net.Teardown(ctx, a) }); err != nil {
			return err
		}
		d.mu.Lock()
		delete(d.live, p.pauseID)
		d.mu.Unlock()
		return nil
	}
	var err error
	switch o.teardown {
	case teardownStop:
		err = firstErr(
			func() error { return stop("app", p.appID) },
			func() error { return del(p.att.NetNS) },
			func() error { return stop("pause", p.pauseID) },
			func() error { return remove("app", p.appID, false) },
			func() error { return remove("pause", p.pauseID, false) },
		)
	case teardownForce:
		err = firstErr(
			func() error { return remove("app", p.appID, true) },
			func() error { return del(p.att.NetNS) },
			func() error { return remove("pause", p.pauseID, true) },
		)
	case teardownPauseFirst:
		err = firstErr(
			func() error { return del(p.att.NetNS) },
			func() error { return remove("pause", p.pauseID, true) },
			func() error { return remove("app", p.appID, true) },
		)
	case teardownDelLast:
		err = firstErr(
			func() error { return remove("app", p.appID, true) },
			func() error { return remove("pause", p.pauseID, true) },
			func() error { return del("") },
		)
	case teardownPauseFirstDelLast:
		err = firstErr(
			func() error { return remove("pause", p.pauseID, true) },
			func() error { return remove("app", p.appID, true) },
			func() error { return del("") },
		)
	case teardownKill:
		err = firstErr(
			func() error {
				return d.rec.step("pause kill", func() error {
					_, err := d.env.docker.ContainerKill(ctx, p.pauseID, client.ContainerKillOptions{Signal: "KILL"})
					return err
				})
			},
			func() error { return del("") },
			func() error { return remove("app", p.appID, true) },
			func() error { return remove("pause", p.pauseID, true) },
		)
	default:
		err = fmt.Errorf("unknown teardown mode %d", o.teardown)
	}
	if err != nil {
		return fmt.Errorf("tear down pod of %s: %w", p.pauseID, err)
	}
	return nil
}

// firstErr runs fns in order until one fails.
func firstErr(fns ...func() error) error {
	for _, fn := range fns {
		if err := fn(); err != nil {
			return err
		}
	}
	return nil
}

// cgroupDirs are where a Docker container's cgroup is, by cgroup version
// and driver, with %s the container ID.
var cgroupDirs = []string{
	"/sys/fs/cgroup/pids/docker/%s",                    // v1, cgroupfs
	"/sys/fs/cgroup/pids/system.slice/docker-%s.scope", // v1, systemd
	"/sys/fs/cgroup/docker/%s",                         // v2, cgroupfs
	"/sys/fs/cgroup/system.slice/docker-%s.scope",      // v2, systemd
}

// cgroupPid returns the one process in container id's cgroup: the pid of
// a just-started pause container, without asking Docker.
func cgroupPid(id string) (int, error) {
	var errs []error
	for _, dir := range cgroupDirs {
		data, err := os.ReadFile(filepath.Join(fmt.Sprintf(dir, id), "cgroup.procs"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		first, _, _ := strings.Cut(string(data), "\n")
		pid, err := strconv.Atoi(first)
		if err != nil {
			return 0, fmt.Errorf("cgroup of %s: pid %q: %w", id, first, err)
		}
		return pid, nil
	}
	return 0, fmt.Errorf("cgroup of %s not found: %w", id, errors.Join(errs...))
}
