package images

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

const pulled = `Successfully pulled image "busybox:1.36" in 1.2s (1.2s including waiting). Image size: 123 bytes.`

func TestEnsureImageExistsPolicies(t *testing.T) {
	tests := []struct {
		policy     corev1.PullPolicy
		present    bool
		wantReason string
		wantCalls  []string
		wantEvents []Event
	}{
		{policy: corev1.PullAlways, present: true,
			wantCalls:  []string{"ImageStatus", "PullImage", "ImageStatus"},
			wantEvents: []Event{normal("Pulling", `Pulling image "busybox:1.36"`), normal("Pulled", pulled)}},
		{policy: corev1.PullAlways, present: false,
			wantCalls:  []string{"ImageStatus", "PullImage", "ImageStatus"},
			wantEvents: []Event{normal("Pulling", `Pulling image "busybox:1.36"`), normal("Pulled", pulled)}},
		{policy: corev1.PullIfNotPresent, present: true,
			wantCalls:  []string{"ImageStatus"},
			wantEvents: []Event{normal("Pulled", `Container image "busybox:1.36" already present on machine`)}},
		{policy: corev1.PullIfNotPresent, present: false,
			wantCalls:  []string{"ImageStatus", "PullImage", "ImageStatus"},
			wantEvents: []Event{normal("Pulling", `Pulling image "busybox:1.36"`), normal("Pulled", pulled)}},
		{policy: corev1.PullNever, present: true,
			wantCalls:  []string{"ImageStatus"},
			wantEvents: []Event{normal("Pulled", `Container image "busybox:1.36" already present on machine`)}},
		{policy: corev1.PullNever, present: false, wantReason: ReasonErrImageNeverPull,
			wantCalls:  []string{"ImageStatus"},
			wantEvents: []Event{warning("ErrImageNeverPull", `Container image "busybox:1.36" is not present with pull policy of Never`)}},
	}
	for _, tt := range tests {
		name := string(tt.policy) + "/absent"
		if tt.present {
			name = string(tt.policy) + "/present"
		}
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			svc := newService(clock)
			svc.pullTakes = 1200 * time.Millisecond
			svc.SetFakeImageSize(123)
			if tt.present {
				svc.SetFakeImages([]string{"busybox:1.36"})
			}
			m, ev := newTestManager(t, svc, clock)
			c := &corev1.Container{Name: "app", Image: "busybox:1.36", ImagePullPolicy: tt.policy}

			ref, err := m.EnsureImageExists(context.Background(), testPod(), c, nil, testSandbox())
			if got := reasonOf(t, err); got != tt.wantReason {
				t.Fatalf("reason = %q (err %v), want %q", got, err, tt.wantReason)
			}
			if wantRef := map[bool]string{true: "busybox:1.36"}[tt.wantReason == ""]; ref != wantRef {
				t.Errorf("ref = %q, want %q", ref, wantRef)
			}
			if diff := cmp.Diff(tt.wantCalls, svc.called()); diff != "" {
				t.Errorf("runtime calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantEvents, ev.take()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnsureImageExistsRequest(t *testing.T) {
	clock := newFakeClock()
	svc := newService(clock)
	m, _ := newTestManager(t, svc, clock)
	// No tag: the default policy is Always and ":latest" is appended.
	c := &corev1.Container{Name: "app", Image: "busybox"}
	ref, err := m.EnsureImageExists(context.Background(), testPod(), c, nil, testSandbox())
	if err != nil {
		t.Fatal(err)
	}
	if ref != "busybox:latest" {
		t.Errorf("ref = %q, want busybox:latest", ref)
	}
	if diff := cmp.Diff([]pullCall{{Image: "busybox:latest", Sandbox: "web"}}, svc.pullCalls()); diff != "" {
		t.Errorf("pulls (-want +got):\n%s", diff)
	}
	for _, spec := range svc.specsSeen {
		if spec.Image != "busybox:latest" || spec.UserSpecifiedImage != "busybox" || spec.Annotations["team"] != "blue" {
			t.Errorf("image spec = %v, want image busybox:latest, user-specified busybox, pod annotations", spec)
		}
	}
}

func TestEnsureImageExistsFailures(t *testing.T) {
	tests := []struct {
		name        string
		image       string
		policy      corev1.PullPolicy
		statusErr   error
		pullErrs    []error
		wantReason  string
		wantMessage string
		wantEvents  []Event
	}{
		{name: "invalid name", image: "Busybox", wantReason: ReasonInvalidImageName,
			wantMessage: `Failed to apply default image tag "Busybox": couldn't parse image name "Busybox": invalid reference format: repository name (library/Busybox) must be lowercase`,
			wantEvents:  []Event{warning("InspectFailed", `Failed to apply default image tag "Busybox": couldn't parse image name "Busybox": invalid reference format: repository name (library/Busybox) must be lowercase`)}},
		{name: "inspect", image: "busybox:1.36", statusErr: errors.New("runtime down"), wantReason: ReasonImageInspectError,
			wantMessage: `Failed to inspect image "busybox:1.36": runtime down`,
			wantEvents:  []Event{warning("InspectFailed", `Failed to inspect image "busybox:1.36": runtime down`)}},
		{name: "pull", image: "busybox:1.36", pullErrs: []error{errors.New("manifest unknown")}, wantReason: ReasonErrImagePull,
			wantMessage: "manifest unknown",
			wantEvents: []Event{normal("Pulling", `Pulling image "busybox:1.36"`),
				warning("Failed", `Failed to pull image "busybox:1.36": manifest unknown`)}},
		{name: "registry unavailable", image: "busybox:1.36", pullErrs: []error{errors.New("RegistryUnavailable: dial tcp: refused")},
			wantReason:  ReasonRegistryUnavailable,
			wantMessage: "image pull failed for busybox:1.36 because the registry is unavailable: dial tcp: refused",
			wantEvents: []Event{normal("Pulling", `Pulling image "busybox:1.36"`),
				warning("Failed", `Failed to pull image "busybox:1.36": RegistryUnavailable: dial tcp: refused`)}},
		{name: "signature", image: "busybox:1.36", pullErrs: []error{errors.New("SignatureValidationFailed: untrusted")},
			wantReason:  ReasonSignatureValidationFailed,
			wantMessage: "image pull failed for busybox:1.36 because the signature validation failed: untrusted",
			wantEvents: []Event{normal("Pulling", `Pulling image "busybox:1.36"`),
				warning("Failed", `Failed to pull image "busybox:1.36": SignatureValidationFailed: untrusted`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			svc := newService(clock)
			if tt.statusErr != nil {
				svc.InjectError("ImageStatus", tt.statusErr)
			}
			for _, err := range tt.pullErrs {
				svc.InjectError("PullImage", err)
			}
			m, ev := newTestManager(t, svc, clock)
			c := &corev1.Container{Name: "app", Image: tt.image, ImagePullPolicy: tt.policy}
			_, err := m.EnsureImageExists(context.Background(), testPod(), c, nil, nil)
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if ie.Reason != tt.wantReason || ie.Message != tt.wantMessage {
				t.Errorf("error = %q / %q, want %q / %q", ie.Reason, ie.Message, tt.wantReason, tt.wantMessage)
			}
			for _, cause := range append(tt.pullErrs, tt.statusErr) {
				if cause != nil && !errors.Is(err, cause) {
					t.Errorf("error does not wrap %v", cause)
				}
			}
			if diff := cmp.Diff(tt.wantEvents, ev.take()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnsureImageExistsInvalidPolicy(t *testing.T) {
	clock := newFakeClock()
	svc := newService(clock)
	m, _ := newTestManager(t, svc, clock)
	c := &corev1.Container{Name: "app", Image: "busybox", ImagePullPolicy: "Sometimes"}
	_, err := m.EnsureImageExists(context.Background(), testPod(), c, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "imagePullPolicy") {
		t.Fatalf("err = %v, want one naming imagePullPolicy", err)
	}
	if calls := svc.called(); len(calls) != 0 {
		t.Errorf("runtime calls = %v, want none", calls)
	}
}

func TestEnsureImageExistsCredentials(t *testing.T) {
	secret := jsonSecret("regcred", `{"auths":{
		"quay.io":{"username":"org","password":"o"},
		"quay.io/team":{"username":"team","password":"t"}}}`)
	teamAuth := &cred{User: "team", Pass: "t", Server: "https://quay.io"}
	orgAuth := &cred{User: "org", Pass: "o", Server: "https://quay.io"}
	tests := []struct {
		name        string
		image       string
		secrets     []corev1.Secret
		pullErrs    []error
		wantPulls   []pullCall
		wantReason  string
		wantMessage string
		wantEvent   Event // the last one
	}{
		{name: "first credential works", image: "quay.io/team/app:v1", secrets: []corev1.Secret{secret},
			wantPulls: []pullCall{{Image: "quay.io/team/app:v1", Auth: teamAuth}}},
		{name: "second credential after the first fails", image: "quay.io/team/app:v1", secrets: []corev1.Secret{secret},
			pullErrs:  []error{errors.New("unauthorized")},
			wantPulls: []pullCall{{Image: "quay.io/team/app:v1", Auth: teamAuth}, {Image: "quay.io/team/app:v1", Auth: orgAuth}}},
		{name: "all fail", image: "quay.io/team/app:v1", secrets: []corev1.Secret{secret},
			pullErrs:    []error{errors.New("unauthorized"), errors.New("denied")},
			wantPulls:   []pullCall{{Image: "quay.io/team/app:v1", Auth: teamAuth}, {Image: "quay.io/team/app:v1", Auth: orgAuth}},
			wantReason:  ReasonErrImagePull,
			wantMessage: "[unauthorized, denied]",
			wantEvent:   warning("Failed", `Failed to pull image "quay.io/team/app:v1": [unauthorized, denied]`)},
		{name: "anonymous when nothing matches", image: "ghcr.io/x/app:v1", secrets: []corev1.Secret{secret},
			wantPulls: []pullCall{{Image: "ghcr.io/x/app:v1"}}},
		{name: "bad secret fails the pull", image: "quay.io/team/app:v1",
			secrets:     []corev1.Secret{jsonSecret("broken", `{"auths":{"quay.io":{"auth":"!!"}}}`)},
			wantReason:  ReasonErrImagePull,
			wantMessage: `image pull secret "default/broken": registry "quay.io": auth field is not base64: illegal base64 data at input byte 0`,
			wantEvent:   warning("Failed", `Failed to pull image "quay.io/team/app:v1": image pull secret "default/broken": registry "quay.io": auth field is not base64: illegal base64 data at input byte 0`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			svc := newService(clock)
			for _, err := range tt.pullErrs {
				svc.InjectError("PullImage", err)
			}
			m, ev := newTestManager(t, svc, clock)
			c := &corev1.Container{Name: "app", Image: tt.image}
			_, err := m.EnsureImageExists(context.Background(), testPod(), c, tt.secrets, nil)
			if got := reasonOf(t, err); got != tt.wantReason {
				t.Fatalf("reason = %q (err %v), want %q", got, err, tt.wantReason)
			}
			if err != nil && err.(*Error).Message != tt.wantMessage {
				t.Errorf("message = %q, want %q", err.(*Error).Message, tt.wantMessage)
			}
			if diff := cmp.Diff(tt.wantPulls, svc.pullCalls()); diff != "" {
				t.Errorf("pulls (-want +got):\n%s", diff)
			}
			if events := ev.take(); tt.wantEvent != (Event{}) && events[len(events)-1] != tt.wantEvent {
				t.Errorf("last event = %v, want %v", events[len(events)-1], tt.wantEvent)
			}
		})
	}
}

func TestEnsureImageExistsSecretWarnings(t *testing.T) {
	clock := newFakeClock()
	svc := newService(clock)
	m, ev := newTestManager(t, svc, clock)
	opaque := corev1.Secret{Type: corev1.SecretTypeOpaque}
	opaque.Namespace, opaque.Name = "default", "plain"
	c := &corev1.Container{Name: "app", Image: "busybox:1.36"}
	if _, err := m.EnsureImageExists(context.Background(), testPod(), c, []corev1.Secret{opaque}, nil); err != nil {
		t.Fatal(err)
	}
	reasons := sets.New[string]()
	for _, e := range ev.take() {
		reasons.Insert(e.Type + "/" + e.Reason)
	}
	if !reasons.Has("Warning/FailedToRetrieveImagePullSecret") {
		t.Errorf("events %v lack the warning about the Opaque secret", reasons.UnsortedList())
	}
}
