package config

// DefaultPauseImage is the default --pod-infra-image: the pause image that
// hack/images.sh builds locally from images/pause. Its registry host
// "berth.local" is never contacted; the image must already be present.
const DefaultPauseImage = "berth.local/pause:3.10"
