package images

import (
	"context"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// pull pulls the image once and records the outcome in the back-off. It
// runs in a flight, possibly for several callers.
func (m *Manager) pull(ctx context.Context, key string, spec *runtimeapi.ImageSpec,
	auths []*runtimeapi.AuthConfig, sandboxConfig *runtimeapi.PodSandboxConfig) pullResult {
	start := m.now()
	ref, err := m.pullWithCredentials(ctx, spec, auths, sandboxConfig)
	if err != nil {
		// A pull stopped because every caller left is no failure of the
		// image; it must not delay the next attempt.
		if ctx.Err() == nil {
			m.backOff.failed(key, m.now(), err)
		}
		return pullResult{err: err, duration: m.now().Sub(start)}
	}
	m.backOff.succeeded(key)

	// The size is for the event only: best effort, as in the kubelet. A
	// runtime that returned no reference still names the image here.
	var size uint64
	if st, err := m.svc.ImageStatus(ctx, spec, false); err == nil && st.GetImage() != nil {
		size = st.GetImage().GetSize()
		if ref == "" {
			ref = st.GetImage().GetId()
		}
	}
	return pullResult{imageRef: ref, size: size, duration: m.now().Sub(start)}
}

// pullWithCredentials tries each matching credential in turn, as the
// kubelet does, and pulls anonymously only when none matches. When all
// fail, the error aggregates theirs, formatted as the kubelet's.
func (m *Manager) pullWithCredentials(ctx context.Context, spec *runtimeapi.ImageSpec,
	auths []*runtimeapi.AuthConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	if len(auths) == 0 {
		return m.svc.PullImage(ctx, spec, nil, sandboxConfig)
	}
	var errs []error
	for _, auth := range auths {
		ref, err := m.svc.PullImage(ctx, spec, auth, sandboxConfig)
		if err == nil {
			return ref, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return "", utilerrors.NewAggregate(errs)
}
