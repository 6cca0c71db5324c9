package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berth-project/berth/internal/manager/podenv"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podRun is one pod's run: the pod, the objects that came with it, and
// the IP of its current sandbox.
type podRun struct {
	pod   *corev1.Pod
	objs  podenv.Objects
	podIP string
	ips   []string
	// hostIPs are the node's, the pod's IPs under hostNetwork.
	hostIPs []string
}

// Run runs pod until it is over, as its restart policy decides, or until
// ctx ends; then it stops the pod gracefully (pre-stop hooks, the grace
// period, then kill). It returns the pod with its final status. pod is
// defaulted in place (namespace, UID, restart policy, grace period).
func (m *Manager) Run(ctx context.Context, pod *corev1.Pod, objs podenv.Objects) (*corev1.Pod, error) {
	Default(pod)
	warnings, err := admit(pod)
	if err != nil {
		return nil, fmt.Errorf("pod %q: %w", pod.Name, err)
	}
	m.warn(podObject(pod), warnings)
	r := &podRun{pod: pod, objs: objs, hostIPs: m.opts.Node.HostIPs}
	unlock, err := m.lockPod(r)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := m.clearFinished(ctx, r); err != nil {
		return nil, err
	}
	defer m.stopFollowing()

	var status *podStatus
	for {
		status, err = m.syncOnce(ctx, r)
		if errors.Is(err, errPodOver) {
			break
		}
		if err != nil && ctx.Err() == nil {
			m.opts.Logger.Warn("sync pod", "pod", pod.Name, "error", err)
		}
		if ctx.Err() != nil {
			break
		}
		t := time.NewTimer(m.opts.SyncPeriod)
		select {
		case <-ctx.Done():
		case <-m.wake:
		case <-t.C:
		}
		t.Stop()
	}
	// Stopping gets its own time: the caller's context is what ended.
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.stopBudget(pod))
	defer cancel()
	if ctx.Err() != nil {
		m.event(podObject(pod), "Normal", "Killing", "Stopping pod")
	}
	if err := m.killPod(stopCtx, r, nil); err != nil {
		return m.final(r, status), fmt.Errorf("stop pod %q: %w", pod.Name, err)
	}
	final, err := getPodStatus(stopCtx, m.opts.Runtime, pod)
	if err != nil {
		return m.final(r, status), err
	}
	out := m.final(r, final)
	// Nothing runs in the pod any more and no later run reuses its UID:
	// its volumes (tmpfs mounts among them) go now, not at some removal
	// that may never come. The stopped containers stay for inspection.
	if err := m.volumes.Cleanup(stopCtx, pod); err != nil {
		return out, fmt.Errorf("remove volumes of pod %q: %w", pod.Name, err)
	}
	return out, nil
}

// stopBudget is how long a graceful stop may take: the grace period and
// time for the hooks' and the runtime's own work.
func (m *Manager) stopBudget(pod *corev1.Pod) time.Duration {
	return time.Duration(*pod.Spec.TerminationGracePeriodSeconds)*time.Second + time.Minute
}

// final is the pod with its status, as `kubectl get pod -o yaml` shows
// it.
func (m *Manager) final(r *podRun, status *podStatus) *corev1.Pod {
	out := r.pod.DeepCopy()
	if status != nil {
		out.Status = m.podStatus(r, status)
	}
	return out
}

// Default fills in what the API server would: namespace, UID, restart
// policy, grace period, DNS policy, pull and termination-message policies.
// The UID, as the kubelet gives static pods, is a hash of the manifest:
// running the same manifest again finds the pod a killed run left, and a
// changed manifest is a new pod.
func Default(pod *corev1.Pod) {
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	if pod.UID == "" {
		pod.UID = manifestUID(pod)
	}
	if pod.Spec.RestartPolicy == "" {
		pod.Spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if pod.Spec.TerminationGracePeriodSeconds == nil {
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		pod.Spec.TerminationGracePeriodSeconds = &grace
	}
	if pod.Spec.DNSPolicy == "" {
		pod.Spec.DNSPolicy = corev1.DNSClusterFirst
	}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			c := &list[i]
			if c.TerminationMessagePath == "" {
				c.TerminationMessagePath = corev1.TerminationMessagePathDefault
			}
			if c.TerminationMessagePolicy == "" {
				c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
			}
			for j := range c.Ports {
				if c.Ports[j].Protocol == "" {
					c.Ports[j].Protocol = corev1.ProtocolTCP
				}
			}
		}
	}
}

// manifestUID hashes the pod as written (before any other default), the
// way the kubelet derives a static pod's UID from its manifest.
func manifestUID(pod *corev1.Pod) types.UID {
	b, err := json.Marshal(pod)
	if err != nil {
		// A Pod always marshals; a UID of its name is the fallback.
		b = []byte(pod.Namespace + "/" + pod.Name)
	}
	sum := sha256.Sum256(b)
	return types.UID(hex.EncodeToString(sum[:16]))
}
