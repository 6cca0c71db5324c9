package volume

import (
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/internal/manager/podenv"
)

// preparer prepares one volume of one pod.
type preparer struct {
	m        *Manager
	pod      *corev1.Pod
	objs     podenv.Objects
	node     podenv.Node
	podDir   string
	v        *corev1.Volume
	warnings []string
}

func (p *preparer) warnf(format string, args ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf(format, args...))
}

func (p *preparer) dir(plugin string) string {
	return filepath.Join(p.podDir, "volumes", plugin, p.v.Name)
}

func (p *preparer) fsGroup() *int64 {
	if sc := p.pod.Spec.SecurityContext; sc != nil {
		return sc.FSGroup
	}
	return nil
}

func (p *preparer) prepare() (Volume, error) {
	src := &p.v.VolumeSource
	switch {
	case src.EmptyDir != nil:
		if p.m.dryRun {
			return Volume{HostPath: p.dir(pluginEmptyDir), Relabel: true}, nil
		}
		return p.emptyDir(src.EmptyDir)
	case src.HostPath != nil:
		return prepareHostPath(src.HostPath, p.m.dryRun)
	case src.ConfigMap != nil:
		files, err := p.configMapFiles(src.ConfigMap)
		if err != nil {
			return Volume{}, err
		}
		return p.atomic(pluginConfigMap, files, false)
	case src.Secret != nil:
		files, err := p.secretFiles(src.Secret)
		if err != nil {
			return Volume{}, err
		}
		// Secrets live in memory, as the kubelet keeps them, so they never
		// reach the host's disk.
		return p.atomic(pluginSecret, files, true)
	case src.DownwardAPI != nil:
		files, err := p.downwardAPIFiles(src.DownwardAPI)
		if err != nil {
			return Volume{}, err
		}
		return p.atomic(pluginDownwardAPI, files, false)
	case src.Projected != nil:
		files, err := p.projectedFiles(src.Projected)
		if err != nil {
			return Volume{}, err
		}
		return p.atomic(pluginProjected, files, true)
	}
	return Volume{}, fmt.Errorf("volume type %s is not supported by berth run", volumeType(src))
}

// atomic writes files into the plugin's directory for this volume, on a
// tmpfs when inMemory.
func (p *preparer) atomic(plugin string, files payload, inMemory bool) (Volume, error) {
	dir := p.dir(plugin)
	if p.m.dryRun {
		return Volume{HostPath: dir, ReadOnly: true, Relabel: true}, nil
	}
	if inMemory {
		if _, err := ensureTmpfs(dir, memorySize(p.pod, p.node, nil)); err != nil {
			return Volume{}, err
		}
	}
	w := atomicWriter{dir: dir, fsGroup: p.fsGroup(), beforeSwap: p.m.beforeSwap, grace: p.m.versionGrace}
	changed, err := w.write(files)
	if err != nil {
		return Volume{}, err
	}
	if changed {
		p.m.logger.Debug("volume content updated", "pod", p.pod.Name, "volume", p.v.Name, "files", len(files))
	}
	return Volume{HostPath: dir, ReadOnly: true, Relabel: true}, nil
}

// volumeType names the kind set in src, as its field is spelled in YAML.
func volumeType(src *corev1.VolumeSource) string {
	kinds := []struct {
		set  bool
		name string
	}{
		{src.PersistentVolumeClaim != nil, "persistentVolumeClaim"},
		{src.Ephemeral != nil, "ephemeral"},
		{src.Image != nil, "image"},
		{src.CSI != nil, "csi"},
		{src.NFS != nil, "nfs"},
		{src.ISCSI != nil, "iscsi"},
		{src.GitRepo != nil, "gitRepo"},
		{src.GCEPersistentDisk != nil, "gcePersistentDisk"},
		{src.AWSElasticBlockStore != nil, "awsElasticBlockStore"},
		{src.Glusterfs != nil, "glusterfs"},
		{src.RBD != nil, "rbd"},
		{src.FlexVolume != nil, "flexVolume"},
		{src.Cinder != nil, "cinder"},
		{src.CephFS != nil, "cephfs"},
		{src.Flocker != nil, "flocker"},
		{src.FC != nil, "fc"},
		{src.AzureFile != nil, "azureFile"},
		{src.AzureDisk != nil, "azureDisk"},
		{src.VsphereVolume != nil, "vsphereVolume"},
		{src.Quobyte != nil, "quobyte"},
		{src.PhotonPersistentDisk != nil, "photonPersistentDisk"},
		{src.PortworxVolume != nil, "portworxVolume"},
		{src.ScaleIO != nil, "scaleIO"},
		{src.StorageOS != nil, "storageos"},
	}
	for _, k := range kinds {
		if k.set {
			return k.name
		}
	}
	return "(none set)"
}
