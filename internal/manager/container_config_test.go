package manager

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/berth-project/berth/internal/manager/podenv"
)

func TestGenerateContainerConfig(t *testing.T) {
	opts := cfgOptions(t, hostResolv)
	opts.Node = nodeWith(rl("memory", "8Gi"))
	pod := cfgPod(func(p *corev1.Pod) {
		p.Annotations = map[string]string{"not": "copied"}
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](5)
		p.Spec.Containers[0] = corev1.Container{
			Name:       "app",
			Image:      "nginx:1",
			Command:    []string{"/bin/sh", "-c", "echo $(GREETING) $(MISSING) $$(GREETING)"},
			Args:       []string{"$(POD)-$(PORT)"},
			WorkingDir: "/srv",
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
			Env: []corev1.EnvVar{
				{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "GREETING", Value: "hello $(POD)"},
			},
			Resources:                corev1.ResourceRequirements{Requests: rl("cpu", "250m", "memory", "1Gi"), Limits: rl("cpu", "1")},
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			Stdin:                    true,
			StdinOnce:                true,
			TTY:                      true,
			Lifecycle:                &corev1.Lifecycle{StopSignal: ptr.To(corev1.SIGUSR1)},
		}
	})
	objs := podenv.Objects{ConfigMaps: map[string]*corev1.ConfigMap{
		"cfg": {ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"PORT": "8080"}},
	}}
	c := &pod.Spec.Containers[0]
	env, lookup, warnings, err := containerEnv(pod, c, objs, opts.Node)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("containerEnv: %v, warnings %q", err, warnings)
	}
	volumeMount := &runtimeapi.Mount{HostPath: "/h/data", ContainerPath: "/data"}
	got, warnings, err := generateContainerConfig(pod, c, 3, "sha256:abc", env, lookup, []*runtimeapi.Mount{volumeMount}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	termFile := filepath.Join(opts.TerminationDir, "uid-1", "containers", "app", "3-termination-log")
	want := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: "app", Attempt: 3},
		Image:      &runtimeapi.ImageSpec{Image: "sha256:abc", UserSpecifiedImage: "nginx:1"},
		Command:    []string{"/bin/sh", "-c", "echo hello web $(MISSING) $(GREETING)"},
		Args:       []string{"web-8080"},
		WorkingDir: "/srv",
		Envs: []*runtimeapi.KeyValue{
			{Key: "PORT", Value: []byte("8080")},
			{Key: "POD", Value: []byte("web")},
			{Key: "GREETING", Value: []byte("hello web")},
		},
		Mounts: []*runtimeapi.Mount{
			volumeMount,
			{HostPath: termFile, ContainerPath: "/dev/termination-log"},
		},
		Labels: map[string]string{
			labelPodName: "web", labelPodNamespace: "ns", labelPodUID: "uid-1", labelContainerName: "app",
		},
		Annotations: map[string]string{
			annotationContainerHash:             containerHash(c),
			annotationRestartCount:              "3",
			annotationTerminationMessagePath:    "/dev/termination-log",
			annotationTerminationMessagePolicy:  "FallbackToLogsOnError",
			annotationPodTerminationGracePeriod: "5",
		},
		LogPath:    "app/3.log",
		Stdin:      true,
		StdinOnce:  true,
		Tty:        true,
		StopSignal: runtimeapi.Signal_SIGNAL_SIGUSR1,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{
				CpuShares: 256, CpuPeriod: 100000, CpuQuota: 100000, OomScoreAdj: 875,
			},
			SecurityContext: defaultSC(),
		},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(termFile)
	if err != nil {
		t.Fatalf("termination log: %v", err)
	}
	if fi.Size() != 0 || fi.Mode().Perm() != 0o666 {
		t.Errorf("termination log: size %d mode %v, want empty 0666", fi.Size(), fi.Mode().Perm())
	}
	if p := terminationLogPath(pod, "app", 3, opts); p != termFile {
		t.Errorf("terminationLogPath = %q, want %q", p, termFile)
	}
}

func TestGenerateContainerConfigKinds(t *testing.T) {
	pod := cfgPod(func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{
			{Name: "init", TerminationMessagePath: "relative"},
			{Name: "side", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways), TerminationMessagePath: "relative"},
		}
	})
	tests := []struct {
		name      string
		wantKind  containerKind
		wantField string
	}{
		{"init", initContainer, "spec.initContainers[0]"},
		{"side", sidecarContainer, "spec.initContainers[1]"},
		{"app", regularContainer, "spec.containers[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, field, ok := locateContainer(pod, tt.name)
			if !ok || kind != tt.wantKind || field != tt.wantField {
				t.Errorf("locateContainer = %v, %q, %v; want %v, %q", kind, field, ok, tt.wantKind, tt.wantField)
			}
		})
	}
	// Errors name the container's own spec path.
	_, _, err := generateContainerConfig(pod, &pod.Spec.InitContainers[1], 0, "img", nil, nil, nil, cfgOptions(t, ""))
	if err == nil || !strings.Contains(err.Error(), "spec.initContainers[1].terminationMessagePath") {
		t.Errorf("err = %v, want one naming spec.initContainers[1].terminationMessagePath", err)
	}
}

func TestGenerateContainerConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*corev1.Container)
		image   string
		wantErr string
	}{
		{name: "no image ref", wantErr: "no image reference"},
		{name: "bad stop signal", image: "img", mutate: func(c *corev1.Container) {
			c.Lifecycle = &corev1.Lifecycle{StopSignal: ptr.To[corev1.Signal]("SIGNOPE")}
		}, wantErr: "spec.containers[0].lifecycle.stopSignal"},
		{name: "bad policy", image: "img", mutate: func(c *corev1.Container) { c.TerminationMessagePolicy = "Always" },
			wantErr: "spec.containers[0].terminationMessagePolicy"},
		{name: "bad resources", image: "img", mutate: func(c *corev1.Container) { c.Resources.Limits = rl("cpu", "-1") },
			wantErr: "spec.containers[0].resources.limits[cpu]"},
		{name: "bad security", image: "img", mutate: func(c *corev1.Container) {
			c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](0), RunAsNonRoot: ptr.To(true)}
		}, wantErr: "spec.containers[0].securityContext.runAsUser"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := cfgOptions(t, "")
			pod := cfgPod(func(p *corev1.Pod) {
				if tt.mutate != nil {
					tt.mutate(&p.Spec.Containers[0])
				}
			})
			_, _, err := generateContainerConfig(pod, &pod.Spec.Containers[0], 0, tt.image, nil, nil, nil, opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one naming %q", err, tt.wantErr)
			}
			// Nothing is created for a pod that fails.
			if _, err := os.Stat(opts.TerminationDir); !os.IsNotExist(err) {
				t.Errorf("termination dir exists after an error: %v", err)
			}
		})
	}
	_, _, err := generateContainerConfig(cfgPod(), &corev1.Container{Name: "ghost"}, 0, "img", nil, nil, nil, cfgOptions(t, ""))
	if err == nil || !strings.Contains(err.Error(), `"ghost"`) {
		t.Errorf("unknown container: err = %v", err)
	}
}

func TestGenerateContainerConfigVolumeAtTerminationPath(t *testing.T) {
	opts := cfgOptions(t, "")
	pod := cfgPod(func(p *corev1.Pod) { p.Spec.Containers[0].TerminationMessagePath = "/var/msg" })
	mounts := []*runtimeapi.Mount{{HostPath: "/h", ContainerPath: "/var/msg/"}}
	got, warnings, err := generateContainerConfig(pod, &pod.Spec.Containers[0], 0, "img", nil, nil, mounts, opts)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(mounts, got.Mounts, protocmp.Transform()); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "spec.containers[0].terminationMessagePath") {
		t.Errorf("warnings = %q", warnings)
	}
}

func TestContainerEnvError(t *testing.T) {
	pod := cfgPod(func(p *corev1.Pod) {
		p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{
			ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Key: "k"}}}}
	})
	_, _, _, err := containerEnv(pod, &pod.Spec.Containers[0], podenv.Objects{}, podenv.Node{})
	if err == nil || !strings.Contains(err.Error(), `container "app"`) {
		t.Errorf("err = %v, want one naming the container", err)
	}
}

func TestStopSignal(t *testing.T) {
	for _, tt := range []struct {
		in   corev1.Signal
		want runtimeapi.Signal
	}{
		{corev1.SIGTERM, runtimeapi.Signal_SIGNAL_SIGTERM},
		{corev1.SIGRTMINPLUS1, runtimeapi.Signal_SIGNAL_SIGRTMINPLUS1},
		{corev1.SIGRTMAXMINUS1, runtimeapi.Signal_SIGNAL_SIGRTMAXMINUS1},
	} {
		c := &corev1.Container{Lifecycle: &corev1.Lifecycle{StopSignal: ptr.To(tt.in)}}
		got, err := stopSignal(c, "f")
		if err != nil || got != tt.want {
			t.Errorf("stopSignal(%s) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
