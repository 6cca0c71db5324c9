package naming

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestImageVolumesRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		vols []ImageVolume
		want []ImageVolume
	}{
		{"none", nil, nil},
		{
			"sorted by container path",
			[]ImageVolume{
				{ContainerPath: "/mnt/b", Image: "sha256:bb", ImageRef: "sha256:bb", SubPath: "etc"},
				{ContainerPath: "/mnt/a", Image: "busybox:1", UserSpecifiedImage: "busybox:1", ImageRef: "sha256:aa"},
			},
			[]ImageVolume{
				{ContainerPath: "/mnt/a", Image: "busybox:1", UserSpecifiedImage: "busybox:1", ImageRef: "sha256:aa"},
				{ContainerPath: "/mnt/b", Image: "sha256:bb", ImageRef: "sha256:bb", SubPath: "etc"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// An image's LABEL of the same key must be overwritten, even
			// when the container has no image volumes.
			l := map[string]string{LabelManaged: "true", LabelImageVolumes: `[{"containerPath":"/spoof","imageRef":"x"}]`}
			if err := PutImageVolumes(l, tt.vols); err != nil {
				t.Fatal(err)
			}
			d, err := Decode(l)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.ImageVolumes()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpEmptyAsNil); diff != "" {
				t.Errorf("ImageVolumes (-want +got):\n%s", diff)
			}
		})
	}
}

var cmpEmptyAsNil = cmp.FilterValues(func(a, b []ImageVolume) bool { return len(a) == 0 && len(b) == 0 }, cmp.Comparer(func(_, _ []ImageVolume) bool { return true }))

func TestImageVolumesCorrupt(t *testing.T) {
	d, err := Decode(map[string]string{LabelManaged: "true", LabelImageVolumes: "{"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ImageVolumes(); err == nil {
		t.Error("ImageVolumes of a corrupt label succeeded")
	}
}

func TestImageVolumeHelperLabels(t *testing.T) {
	d, err := Decode(ImageVolumeHelperLabels("sha256:aa"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Type != TypeImageVolume || d.raw[LabelVolumeImage] != "sha256:aa" {
		t.Errorf("decoded helper labels = %+v", d)
	}
}
