// Package dockertest is a stateful, in-memory fake of docker.API for unit
// tests, as net/http/httptest is for HTTP. No non-test code imports it.
//
// The fake keeps containers and images and answers as Docker does where
// berth depends on it: the same state transitions, the same lookups (ID,
// unique ID prefix, name), the same error kinds (errdefs), image labels
// merged into container labels. What berth never asks of Docker is left
// out. Tests drive it with InjectError, read what happened with Calls and
// the state accessors, and set outcomes Docker would decide (Exit, SetPull).
package dockertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/docker"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

// Fake is an in-memory Docker daemon. The zero value is not usable: call New.
// It is safe for concurrent use.
type Fake struct {
	mu sync.Mutex

	containers map[string]*fakeContainer // by ID
	images     map[string]*Image         // by ID
	imageSeq   map[string]int            // by ID: creation order
	pulls      map[string]pullOutcome    // by reference as asked
	pullHook   func(ref string)
	pullLog    []Pull
	openPulls  int

	errs    map[string][]error // injected, by method
	calls   []string
	seq     int // orders containers and images by creation
	nextPid int
	now     func() time.Time

	ping    client.PingResult
	version client.ServerVersionResult
	info    system.Info
}

var _ docker.API = (*Fake)(nil)

// New returns an empty daemon that answers Ping, ServerVersion and Info
// like a current Docker Engine on Linux.
func New() *Fake {
	return &Fake{
		containers: map[string]*fakeContainer{},
		images:     map[string]*Image{},
		imageSeq:   map[string]int{},
		pulls:      map[string]pullOutcome{},
		errs:       map[string][]error{},
		nextPid:    4242,
		now:        time.Now,
		ping:       client.PingResult{APIVersion: "1.51", OSType: "linux"},
		version: client.ServerVersionResult{
			Version: "28.5.1", APIVersion: "1.51", MinAPIVersion: "1.24", Os: "linux", Arch: "amd64",
		},
		info: system.Info{
			Driver: "overlay2", DockerRootDir: "/var/lib/docker", CgroupDriver: "systemd",
			CgroupVersion: "2", OSType: "linux", ServerVersion: "28.5.1",
		},
	}
}

// methods are the names InjectError accepts: those of docker.API.
var methods = func() map[string]bool {
	t := reflect.TypeFor[docker.API]()
	m := map[string]bool{}
	for i := range t.NumMethod() {
		m[t.Method(i).Name] = true
	}
	return m
}()

// InjectError makes the next call of method (a docker.API method name, such
// as "ContainerStart") fail with err before it changes anything. Each
// InjectError fails one call; inject several to fail several calls in a row.
// An unknown method name panics: it is a mistake in the test.
func (f *Fake) InjectError(method string, err error) {
	if !methods[method] {
		panic(fmt.Sprintf("dockertest: InjectError: %q is not a docker.API method", method))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[method] = append(f.errs[method], err)
}

// Calls returns the names of the methods called so far, in order.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// SetClock sets the clock of timestamps (Created, StartedAt, FinishedAt).
func (f *Fake) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// SetPing sets what Ping returns.
func (f *Fake) SetPing(r client.PingResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ping = r
}

// SetServerVersion sets what ServerVersion returns.
func (f *Fake) SetServerVersion(r client.ServerVersionResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version = r
}

// SetInfo sets what Info returns.
func (f *Fake) SetInfo(info system.Info) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.info = info
}

// Ping implements docker.System.
func (f *Fake) Ping(ctx context.Context, _ client.PingOptions) (client.PingResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Ping"); err != nil {
		return client.PingResult{}, err
	}
	return f.ping, nil
}

// ServerVersion implements docker.System.
func (f *Fake) ServerVersion(ctx context.Context, _ client.ServerVersionOptions) (client.ServerVersionResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ServerVersion"); err != nil {
		return client.ServerVersionResult{}, err
	}
	return f.version, nil
}

// Info implements docker.System.
func (f *Fake) Info(ctx context.Context, _ client.InfoOptions) (client.SystemInfoResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Info"); err != nil {
		return client.SystemInfoResult{}, err
	}
	return client.SystemInfoResult{Info: clone(f.info)}, nil
}

// begin records a call of method and returns the error it must fail with:
// an injected one first, else the context's, as the real client returns it
// for a cancelled call. f.mu must be held.
func (f *Fake) begin(ctx context.Context, method string) error {
	f.calls = append(f.calls, method)
	if q := f.errs[method]; len(q) > 0 {
		f.errs[method] = q[1:]
		return q[0]
	}
	return ctx.Err()
}

// timestamp formats t as Docker does in inspect output.
func timestamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// zeroTime is how Docker reports a time that has not happened.
const zeroTime = "0001-01-01T00:00:00Z"

// randomHex returns n random bytes in hex: Docker's IDs are 32 bytes.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// clone deep-copies v through JSON, the way a value crosses the Engine
// API, so neither the caller nor the fake sees the other's later writes.
func clone[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("dockertest: clone %T: %v", v, err))
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("dockertest: clone %T: %v", v, err))
	}
	return out
}
