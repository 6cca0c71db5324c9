package images

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// EnsureImageExists makes sure the container's image is present as its
// pull policy asks, and returns the image reference to put into
// ContainerConfig.Image.Image: ImageStatus's Image.Id when the image was
// already there, else the reference PullImage returned.
//
// Failures the kubelet reports as a waiting reason are *Error with that
// Reason; an invalid imagePullPolicy is a plain error naming the field,
// and a cancelled ctx returns ctx's error.
//
// pullSecrets are the Secrets the Pod names in spec.imagePullSecrets that
// exist; reporting missing ones is the caller's job.
func (m *Manager) EnsureImageExists(ctx context.Context, pod *corev1.Pod, c *corev1.Container, pullSecrets []corev1.Secret, sandboxConfig *runtimeapi.PodSandboxConfig) (imageRef string, err error) {
	if c == nil {
		return "", errors.New("ensure image: no container")
	}
	img, err := parseImage(c.Image)
	if err != nil {
		msg := fmt.Sprintf("Failed to apply default image tag %q: %v", c.Image, err)
		m.warning(EventInspectFailed, msg)
		return "", &Error{Reason: ReasonInvalidImageName, Message: msg, Err: err}
	}
	policy, err := pullPolicy(c, img)
	if err != nil {
		return "", err
	}
	spec := &runtimeapi.ImageSpec{
		Image:              img.spec,
		UserSpecifiedImage: c.Image,
		Annotations:        podAnnotations(pod),
	}

	status, err := m.svc.ImageStatus(ctx, spec, false)
	if err != nil {
		msg := fmt.Sprintf("Failed to inspect image %q: %v", c.Image, err)
		m.warning(EventInspectFailed, msg)
		return "", &Error{Reason: ReasonImageInspectError, Message: msg, Err: err}
	}
	presentRef := status.GetImage().GetId()

	switch {
	case policy == corev1.PullNever && presentRef == "":
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
		m.warning(EventErrImageNeverPull, msg)
		return "", &Error{Reason: ReasonErrImageNeverPull, Message: msg}
	case policy == corev1.PullNever, policy == corev1.PullIfNotPresent && presentRef != "":
		m.normal(EventPulled, fmt.Sprintf("Container image %q already present on machine", c.Image))
		return presentRef, nil
	}

	// Back-off and one pull at a time are per image as the runtime sees
	// it, so "busybox" and "busybox:latest" share them.
	key := img.spec
	if in, lastErr := m.backOff.check(key, m.now()); in {
		msg := fmt.Sprintf("Back-off pulling image %q", c.Image)
		m.normal(EventBackOff, msg)
		return "", &Error{Reason: ReasonImagePullBackOff, Message: msg, Err: lastErr}
	}

	m.normal(EventPulling, fmt.Sprintf("Pulling image %q", c.Image))
	start := m.now()
	res, err := m.pullShared(ctx, key, img, spec, pullSecrets, sandboxConfig, start)
	if err != nil {
		return "", err
	}
	if res.err != nil {
		m.warning(EventFailed, fmt.Sprintf("Failed to pull image %q: %v", c.Image, res.err))
		return "", pullError(c.Image, res.err)
	}
	m.normal(EventPulled, fmt.Sprintf("Successfully pulled image %q in %v (%v including waiting). Image size: %v bytes.",
		c.Image, res.duration.Truncate(time.Millisecond), m.now().Sub(start).Truncate(time.Millisecond), res.size))
	return res.imageRef, nil
}

// pullShared joins or starts the pull of key and waits for it, reporting
// progress. The error is ctx's when the caller gave up; the pull's own
// failure is in the result.
func (m *Manager) pullShared(ctx context.Context, key string, img parsedImage, spec *runtimeapi.ImageSpec,
	secrets []corev1.Secret, sandboxConfig *runtimeapi.PodSandboxConfig, start time.Time) (pullResult, error) {
	// The secrets are read by each caller, so that each sees the warnings
	// about its own; the pull that runs uses the first caller's.
	ring, warnings, err := newKeyring(secrets)
	for _, w := range warnings {
		m.warning(EventFailedToRetrieveImagePullSecret, w)
	}
	if err != nil {
		// As in the kubelet, credentials that cannot be read fail the pull
		// and count toward the back-off.
		m.backOff.failed(key, m.now(), err)
		return pullResult{err: err}, nil
	}
	auths := ring.lookup(img.named)

	fl, leave := m.flights.join(ctx, key, func(ctx context.Context) pullResult {
		return m.pull(ctx, key, spec, auths, sandboxConfig)
	})
	defer leave()

	var tick <-chan time.Time
	if m.progress != nil {
		t := time.NewTicker(m.progressEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-fl.done:
			return fl.res, nil
		case <-ctx.Done():
			return pullResult{}, fmt.Errorf("pull image %q: %w", img.user, ctx.Err())
		case <-tick:
			m.progress(img.user, m.now().Sub(start))
		}
	}
}

func podAnnotations(pod *corev1.Pod) map[string]string {
	if pod == nil || len(pod.Annotations) == 0 {
		return nil
	}
	out := make(map[string]string, len(pod.Annotations))
	for k, v := range pod.Annotations {
		out[k] = v
	}
	return out
}
