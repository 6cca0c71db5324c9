package translate

import (
	"fmt"

	"github.com/moby/moby/api/types/container"
)

// builder accumulates one Docker create config. Sandbox and Container fill
// it step by step so the rules they share (security, namespaces) are written
// once.
type builder struct {
	host     Host
	config   *container.Config
	hostCfg  *container.HostConfig
	warnings []string
}

func newBuilder(h Host) *builder {
	return &builder{
		host: h,
		config: &container.Config{
			// An image HEALTHCHECK would make dockerd exec into the container
			// on its own schedule; the kubelet runs probes itself and nothing
			// reads Docker's health state.
			Healthcheck: &container.HealthConfig{Test: []string{"NONE"}},
		},
		hostCfg: &container.HostConfig{},
	}
}

// warnf records that field is honoured only approximately.
func (b *builder) warnf(field, format string, args ...any) {
	b.warnings = append(b.warnings, field+": "+fmt.Sprintf(format, args...))
}

func (b *builder) securityOpt(opt string) {
	b.hostCfg.SecurityOpt = append(b.hostCfg.SecurityOpt, opt)
}

func (b *builder) result() Result {
	return Result{Config: b.config, HostConfig: b.hostCfg, Warnings: b.warnings}
}
