package images

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
)

const defaultTag = "latest"

// parsedImage is a container's image name, parsed once.
type parsedImage struct {
	// user is the name as written in the Pod: events and messages quote it.
	user string
	// named is the fully qualified name (docker.io/library/busybox:1.36),
	// used to find credentials.
	named reference.Named
	// spec is what the runtime is asked for: the name as written, with
	// ":latest" appended when it has neither tag nor digest. Like the
	// kubelet we do not qualify it (no docker.io/ prefix), so the CRI
	// runtime applies its own default registry.
	spec string
	// tag is the tag, "latest" when there is neither tag nor digest, and
	// empty for a digest without a tag.
	tag string
}

func parseImage(image string) (parsedImage, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return parsedImage{}, fmt.Errorf("couldn't parse image name %q: %w", image, err)
	}
	p := parsedImage{user: image, named: named, spec: image}
	if t, ok := named.(reference.Tagged); ok {
		p.tag = t.Tag()
	}
	_, digested := named.(reference.Digested)
	if p.tag == "" && !digested {
		p.tag = defaultTag
		p.spec = image + ":" + defaultTag
	}
	return p, nil
}

// pullPolicy is the container's policy, or the one the API server would
// have defaulted it to: Always for ":latest" or an untagged name without
// digest, else IfNotPresent. berth reads Pods from files, so nothing has
// defaulted them.
func pullPolicy(c *corev1.Container, img parsedImage) (corev1.PullPolicy, error) {
	switch c.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		return c.ImagePullPolicy, nil
	case "":
		if img.tag == defaultTag {
			return corev1.PullAlways, nil
		}
		return corev1.PullIfNotPresent, nil
	}
	return "", fmt.Errorf("container %q: imagePullPolicy: unsupported value %q: supported values: %s",
		c.Name, c.ImagePullPolicy, strings.Join([]string{
			string(corev1.PullAlways), string(corev1.PullIfNotPresent), string(corev1.PullNever),
		}, ", "))
}
