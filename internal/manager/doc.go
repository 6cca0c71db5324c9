// Package manager is the kubelet's runtime manager on its own: it runs one
// Pod with kubelet semantics on any CRI runtime. Like kuberuntime's
// SyncPod, each sync first computes a plan as a pure value (computeActions)
// from the Pod and what the runtime reports, then applies it in numbered
// steps.
//
// The manager speaks only the CRI (k8s.io/cri-api interfaces); it never
// imports berth's server or Docker code, so the same code drives berth
// in-process and containerd or CRI-O over their sockets.
package manager
