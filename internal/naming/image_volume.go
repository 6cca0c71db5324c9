package naming

import (
	"cmp"
	"slices"
)

// Image volumes (CRI Mount.image) need two things in Docker's labels: the
// helper containers their trees are exported from, which a crash may leave
// behind, and what each container's image volumes were, which its binds
// alone cannot say (a bind knows its host directory, not the image or the
// reference it was asked by).
const (
	// TypeImageVolume is the LabelType of a helper container: created
	// from an image to export its root filesystem, never started.
	TypeImageVolume = "image-volume"
	// LabelImageVolumes is a container's image volumes, a JSON list of
	// ImageVolume.
	LabelImageVolumes = "io.berth.image-volumes"
	// LabelVolumeImage is the image ID a helper container exports.
	LabelVolumeImage = "io.berth.volume-image"
)

// ImageVolume is one image volume of a container, as ContainerStatus
// reports it back.
type ImageVolume struct {
	ContainerPath string `json:"containerPath"`
	// Image and UserSpecifiedImage are the mount's ImageSpec as asked.
	Image              string `json:"image"`
	UserSpecifiedImage string `json:"userSpecifiedImage,omitempty"`
	// ImageRef is the image ID the volume was made from.
	ImageRef string `json:"imageRef"`
	SubPath  string `json:"subPath,omitempty"`
}

// ImageVolumeHelperLabels are the labels of the helper container that
// exports imageID's root filesystem.
func ImageVolumeHelperLabels(imageID string) map[string]string {
	return map[string]string{
		LabelManaged:     "true",
		LabelType:        TypeImageVolume,
		LabelVolumeImage: imageID,
	}
}

// PutImageVolumes records a container's image volumes in its labels l.
// The label is set even without volumes, so an image's LABEL of that key
// (which Docker merges under the container's own) is never read as ours.
func PutImageVolumes(l map[string]string, vols []ImageVolume) error {
	if vols == nil {
		vols = []ImageVolume{}
	}
	return putJSON(l, LabelImageVolumes, vols)
}

// ImageVolumes decodes what PutImageVolumes stored, sorted by container
// path.
func (d Decoded) ImageVolumes() ([]ImageVolume, error) {
	var vols []ImageVolume
	if err := getJSON(d.raw, LabelImageVolumes, &vols); err != nil {
		return nil, err
	}
	slices.SortFunc(vols, func(a, b ImageVolume) int { return cmp.Compare(a.ContainerPath, b.ContainerPath) })
	return vols, nil
}
