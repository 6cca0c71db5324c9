package dockertest

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

type fakeContainer struct {
	seq int
	c   container.InspectResponse
}

// validName is Docker's rule for container names.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ContainerCreate implements docker.Containers. As Docker does, it refuses
// a name in use (errdefs.ErrConflict) and an image it does not have
// (errdefs.ErrNotFound), and merges the image's labels under the
// container's own.
func (f *Fake) ContainerCreate(ctx context.Context, opts client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ContainerCreate"); err != nil {
		return client.ContainerCreateResult{}, err
	}
	if opts.Config == nil {
		return client.ContainerCreateResult{}, errdefs.ErrInvalidArgument.WithMessage("config cannot be empty in order to create a container")
	}
	ref := cmp.Or(opts.Config.Image, opts.Image)
	img, err := f.findImage(ref)
	if err != nil {
		return client.ContainerCreateResult{}, err
	}
	id := randomHex(32)
	name := opts.Name
	if name == "" {
		name = "fake_" + id[:12]
	}
	if !validName.MatchString(name) {
		return client.ContainerCreateResult{}, errdefs.ErrInvalidArgument.WithMessage(
			fmt.Sprintf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	name = "/" + strings.TrimPrefix(name, "/")
	for _, c := range f.containers {
		if c.c.Name == name {
			return client.ContainerCreateResult{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf(
				"Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.",
				name, c.c.ID))
		}
	}
	cfg := clone(*opts.Config)
	cfg.Image = ref
	cfg.Labels = maps.Clone(img.Labels)
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	maps.Copy(cfg.Labels, opts.Config.Labels)
	hc := &container.HostConfig{}
	if opts.HostConfig != nil {
		*hc = clone(*opts.HostConfig)
	}
	f.seq++
	f.containers[id] = &fakeContainer{seq: f.seq, c: container.InspectResponse{
		ID:      id,
		Created: timestamp(f.now()),
		Path:    first(cfg.Entrypoint, cfg.Cmd),
		Name:    name,
		Image:   img.ID,
		State: &container.State{
			Status: container.StateCreated, StartedAt: zeroTime, FinishedAt: zeroTime,
		},
		Config:     &cfg,
		HostConfig: hc,
	}}
	return client.ContainerCreateResult{ID: id}, nil
}

func first(lists ...[]string) string {
	for _, l := range lists {
		if len(l) > 0 {
			return l[0]
		}
	}
	return ""
}

// ContainerStart implements docker.Containers. The container runs with a
// fake Pid until ContainerStop or Exit; starting a running container is a
// no-op, as Docker's "304 Not Modified" is to the client.
func (f *Fake) ContainerStart(ctx context.Context, id string, _ client.ContainerStartOptions) (client.ContainerStartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ContainerStart"); err != nil {
		return client.ContainerStartResult{}, err
	}
	c, err := f.find(id)
	if err != nil {
		return client.ContainerStartResult{}, err
	}
	st := c.c.State
	if st.Running {
		return client.ContainerStartResult{}, nil
	}
	f.nextPid++
	*st = container.State{
		Status: container.StateRunning, Running: true, Pid: f.nextPid,
		StartedAt: timestamp(f.now()), FinishedAt: st.FinishedAt,
	}
	return client.ContainerStartResult{}, nil
}

// ContainerStop implements docker.Containers. A running container exits
// with code 0, as a process that honours SIGTERM does (use Exit for any
// other end); stopping a container that is not running is a no-op.
func (f *Fake) ContainerStop(ctx context.Context, id string, _ client.ContainerStopOptions) (client.ContainerStopResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ContainerStop"); err != nil {
		return client.ContainerStopResult{}, err
	}
	c, err := f.find(id)
	if err != nil {
		return client.ContainerStopResult{}, err
	}
	if c.c.State.Running {
		f.exit(c, 0, false)
	}
	return client.ContainerStopResult{}, nil
}

// ContainerRemove implements docker.Containers. A running container is
// removed only with Force; otherwise the answer is errdefs.ErrConflict.
func (f *Fake) ContainerRemove(ctx context.Context, id string, opts client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ContainerRemove"); err != nil {
		return client.ContainerRemoveResult{}, err
	}
	c, err := f.find(id)
	if err != nil {
		return client.ContainerRemoveResult{}, err
	}
	if c.c.State.Running && !opts.Force {
		return client.ContainerRemoveResult{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf(
			"cannot remove container %q: container is running: stop the container before removing or force remove", c.c.Name))
	}
	delete(f.containers, c.c.ID)
	return client.ContainerRemoveResult{}, nil
}

// ContainerInspect implements docker.Containers: id is a full ID, a unique
// ID prefix or a name, with or without the leading "/".
func (f *Fake) ContainerInspect(ctx context.Context, id string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ContainerInspect"); err != nil {
		return client.ContainerInspectResult{}, err
	}
	c, err := f.find(id)
	if err != nil {
		return client.ContainerInspectResult{}, err
	}
	return client.ContainerInspectResult{Container: clone(c.c)}, nil
}

// ContainerList implements docker.Containers, newest first. Without All
// only running containers are listed, unless a "status" filter asks for
// others. Filters "label" (every value must match: "key" or "key=value"),
// "id" (ID prefix), "name" (substring) and "status" are understood;
// another term is errdefs.ErrInvalidArgument, as Docker answers.
func (f *Fake) ContainerList(ctx context.Context, opts client.ContainerListOptions) (client.ContainerListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ContainerList"); err != nil {
		return client.ContainerListResult{}, err
	}
	for term := range opts.Filters {
		switch term {
		case "label", "id", "name", "status":
		default:
			return client.ContainerListResult{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s'", term))
		}
	}
	all := opts.All || len(opts.Filters["status"]) > 0
	items := []container.Summary{}
	for _, c := range f.sorted() {
		st := c.c.State
		switch {
		case !all && !st.Running,
			!matchLabels(opts.Filters["label"], c.c.Config.Labels),
			!matchAny(opts.Filters["id"], func(v string) bool { return strings.HasPrefix(c.c.ID, v) }),
			!matchAny(opts.Filters["name"], func(v string) bool { return strings.Contains(c.c.Name, v) }),
			!matchAny(opts.Filters["status"], func(v string) bool { return v == string(st.Status) }):
			continue
		}
		s := container.Summary{
			ID:      c.c.ID,
			Names:   []string{c.c.Name},
			Image:   c.c.Config.Image,
			ImageID: c.c.Image,
			Command: strings.Join(append(slices.Clone(c.c.Config.Entrypoint), c.c.Config.Cmd...), " "),
			Created: created(c.c.Created),
			Labels:  maps.Clone(c.c.Config.Labels),
			State:   st.Status,
			Status:  statusText(st),
		}
		s.HostConfig.NetworkMode = string(c.c.HostConfig.NetworkMode)
		items = append(items, s)
	}
	return client.ContainerListResult{Items: items}, nil
}

// matchLabels is Docker's label filter: every value must match, "key" by
// presence, "key=value" exactly.
func matchLabels(want map[string]bool, labels map[string]string) bool {
	for v := range want {
		k, val, hasValue := strings.Cut(v, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != val) {
			return false
		}
	}
	return true
}

// matchAny is Docker's rule for other filter terms: no values, or any one
// value matching.
func matchAny(values map[string]bool, match func(string) bool) bool {
	if len(values) == 0 {
		return true
	}
	for v := range values {
		if match(v) {
			return true
		}
	}
	return false
}

// created turns an inspect timestamp into the Unix seconds of a list entry.
func created(ts string) int64 {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return 0
	}
	return t.Unix()
}

func statusText(st *container.State) string {
	switch st.Status {
	case container.StateRunning:
		return "Up"
	case container.StateExited:
		return fmt.Sprintf("Exited (%d)", st.ExitCode)
	default:
		return strings.ToUpper(string(st.Status[:1])) + string(st.Status[1:])
	}
}

// ContainerUpdate implements docker.Containers: the resource fields berth
// sets replace the container's when they are not zero, as Docker's update
// leaves unset fields alone.
func (f *Fake) ContainerUpdate(ctx context.Context, id string, opts client.ContainerUpdateOptions) (client.ContainerUpdateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ContainerUpdate"); err != nil {
		return client.ContainerUpdateResult{}, err
	}
	c, err := f.find(id)
	if err != nil {
		return client.ContainerUpdateResult{}, err
	}
	if r := opts.Resources; r != nil {
		have := &c.c.HostConfig.Resources
		setIf(&have.CPUShares, r.CPUShares)
		setIf(&have.CPUPeriod, r.CPUPeriod)
		setIf(&have.CPUQuota, r.CPUQuota)
		setIf(&have.Memory, r.Memory)
		setIf(&have.MemorySwap, r.MemorySwap)
		setIf(&have.CpusetCpus, r.CpusetCpus)
		setIf(&have.CpusetMems, r.CpusetMems)
		if r.PidsLimit != nil {
			limit := *r.PidsLimit
			have.PidsLimit = &limit
		}
	}
	return client.ContainerUpdateResult{}, nil
}

func setIf[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// Exit ends the process of running container id as if it exited on its
// own: with exitCode, and OOMKilled as the kernel's OOM killer reports it.
func (f *Fake) Exit(id string, exitCode int, oomKilled bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.find(id)
	if err != nil {
		return err
	}
	if !c.c.State.Running {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s is not running", c.c.ID))
	}
	f.exit(c, exitCode, oomKilled)
	return nil
}

func (f *Fake) exit(c *fakeContainer, exitCode int, oomKilled bool) {
	st := c.c.State
	*st = container.State{
		Status: container.StateExited, ExitCode: exitCode, OOMKilled: oomKilled,
		StartedAt: st.StartedAt, FinishedAt: timestamp(f.now()),
	}
}

// Container returns a copy of the container that id (full ID, unique
// prefix or name) names.
func (f *Fake) Container(id string) (container.InspectResponse, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.find(id)
	if err != nil {
		return container.InspectResponse{}, false
	}
	return clone(c.c), true
}

// Containers returns copies of every container, oldest first.
func (f *Fake) Containers() []container.InspectResponse {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []container.InspectResponse{}
	for _, c := range slices.Backward(f.sorted()) {
		out = append(out, clone(c.c))
	}
	return out
}

// sorted returns the containers newest first, as Docker lists them.
func (f *Fake) sorted() []*fakeContainer {
	out := slices.Collect(maps.Values(f.containers))
	slices.SortFunc(out, func(a, b *fakeContainer) int { return b.seq - a.seq })
	return out
}

// find resolves id as Docker does: a full ID, then a name, then a unique
// ID prefix.
func (f *Fake) find(id string) (*fakeContainer, error) {
	if id == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid container name or ID: value is empty")
	}
	if c, ok := f.containers[id]; ok {
		return c, nil
	}
	name := "/" + strings.TrimPrefix(id, "/")
	for _, c := range f.containers {
		if c.c.Name == name {
			return c, nil
		}
	}
	var match *fakeContainer
	for _, c := range f.containers {
		if strings.HasPrefix(c.c.ID, id) {
			if match != nil {
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("multiple IDs found with provided prefix: %s", id))
			}
			match = c
		}
	}
	if match == nil {
		return nil, errdefs.ErrNotFound.WithMessage("No such container: " + id)
	}
	return match, nil
}
