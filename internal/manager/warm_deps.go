package manager

import (
	_ "k8s.io/api/core/v1"
	_ "k8s.io/cri-client/pkg"
	_ "k8s.io/cri-client/pkg/logs"
	_ "k8s.io/cri-api/pkg/apis/testing"
	_ "sigs.k8s.io/yaml"
	_ "k8s.io/apimachinery/pkg/util/yaml"
)
