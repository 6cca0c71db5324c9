package cri

import (
	"context"
	"encoding/json"
	"time"

	"github.com/berth-project/berth/internal/naming"
	"github.com/berth-project/berth/internal/sandbox"
	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodSandboxStatus reports a sandbox. Its IPs come from the CNI result kept
// in the checkpoint, never from running a command in the container.
func (s *Service) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.inspectOwned(ctx, req.GetPodSandboxId(), naming.TypeSandbox)
	if err != nil {
		return nil, err
	}
	meta, err := sb.labels.SandboxMetadata()
	if err != nil {
		return nil, err
	}
	cp, cpErr := s.sandboxes.Read(sb.c.ID)
	st := &runtimeapi.PodSandboxStatus{
		Id:          sb.c.ID,
		Metadata:    meta,
		State:       sandboxState(sb.c.State, cp, cpErr),
		CreatedAt:   createdAt(sb.labels, sb.c.Created),
		Labels:      sb.labels.Labels,
		Annotations: sb.labels.Annotations,
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: namespaceOptions(sb.c.HostConfig),
		}},
	}
	if cpErr == nil && !cp.HostNetwork && len(cp.IPs) > 0 && st.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: cp.IPs[0]}
		for _, ip := range cp.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: st}
	if req.GetVerbose() {
		info := map[string]any{"image": sb.c.Image, "pid": pidOf(sb.c.State), "checkpoint": cp}
		if cpErr != nil {
			info["checkpointError"] = cpErr.Error()
		}
		b, _ := json.Marshal(info)
		resp.Info = map[string]string{"info": string(b)}
	}
	return resp, nil
}

// sandboxState is READY only with the pause container running and, for a
// pod network, the CNI setup recorded as done.
func sandboxState(st *container.State, cp sandbox.Checkpoint, cpErr error) runtimeapi.PodSandboxState {
	if st == nil || !st.Running || cpErr != nil || !cp.NetworkReady {
		return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	}
	return runtimeapi.PodSandboxState_SANDBOX_READY
}

func namespaceOptions(hc *container.HostConfig) *runtimeapi.NamespaceOption {
	o := &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_POD, Ipc: runtimeapi.NamespaceMode_POD,
	}
	if hc == nil {
		return o
	}
	if hc.NetworkMode.IsHost() {
		o.Network = runtimeapi.NamespaceMode_NODE
	}
	if hc.PidMode.IsHost() {
		o.Pid = runtimeapi.NamespaceMode_NODE
	}
	if hc.IpcMode.IsHost() {
		o.Ipc = runtimeapi.NamespaceMode_NODE
	}
	return o
}

func pidOf(st *container.State) int {
	if st == nil {
		return 0
	}
	return st.Pid
}

// createdAt prefers berth's own creation stamp (nanoseconds) over Docker's.
func createdAt(d naming.Decoded, dockerCreated string) int64 {
	if d.CreatedAt != 0 {
		return d.CreatedAt
	}
	return parseTime(dockerCreated)
}

// parseTime turns Docker's RFC 3339 times into Unix nanoseconds; Docker's
// zero time ("0001-01-01T00:00:00Z") is 0.
func parseTime(v string) int64 {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.IsZero() || t.Year() < 1970 {
		return 0
	}
	return t.UnixNano()
}

// ListPodSandbox lists the sandboxes berth made, filtered as asked.
func (s *Service) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	items, err := s.list(ctx, listQuery{typ: naming.TypeSandbox, idPrefix: f.GetId(), selector: f.GetLabelSelector()})
	if err != nil {
		return nil, err
	}
	out := []*runtimeapi.PodSandbox{}
	for _, it := range items {
		d := it.labels
		meta, err := d.SandboxMetadata()
		if err != nil {
			s.log.WarnContext(ctx, "sandbox with unreadable metadata skipped", "sandbox", it.ID, "error", err)
			continue
		}
		cp, cpErr := s.sandboxes.Read(it.ID)
		// Docker counts a paused container as running; so does Inspect.
		running := it.State == container.StateRunning || it.State == container.StatePaused
		state := sandboxState(&container.State{Running: running}, cp, cpErr)
		if f.GetState() != nil && f.GetState().GetState() != state {
			continue
		}
		out = append(out, &runtimeapi.PodSandbox{
			Id: it.ID, Metadata: meta, State: state, CreatedAt: createdAt(d, ""),
			Labels: d.Labels, Annotations: d.Annotations,
		})
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

func matchLabels(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}
