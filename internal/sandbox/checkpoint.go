// Package sandbox keeps what berth must know about a pod sandbox beyond what
// Docker stores: a checkpoint per sandbox (what CNI DEL needs when the pause
// container is gone, and whether the network was ever set up) and the
// sandbox's /etc files.
//
// Each sandbox owns one directory under the root; the checkpoint inside it is
// written atomically (temp file, fsync, rename) and carries a checksum, so a
// crash mid-write leaves the previous version or a detectably bad one, never
// a silently wrong one.
package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/containerd/errdefs"
)

// PortMapping is a hostPort of the pod, kept for CNI DEL.
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Checkpoint is berth's record of one sandbox.
type Checkpoint struct {
	ID           string        `json:"id"`
	Name         string        `json:"name"`
	Namespace    string        `json:"namespace"`
	UID          string        `json:"uid"`
	HostNetwork  bool          `json:"hostNetwork,omitempty"`
	PortMappings []PortMapping `json:"portMappings,omitempty"`
	CgroupParent string        `json:"cgroupParent,omitempty"`
	// NetworkReady is set only once CNI ADD has succeeded: a sandbox whose
	// RunPodSandbox was cut short never looks READY.
	NetworkReady bool     `json:"networkReady,omitempty"`
	IPs          []string `json:"ips,omitempty"`
	// NetNS is the namespace path CNI ADD used; DEL passes it while the
	// pause process lives.
	NetNS string `json:"netns,omitempty"`
	// NetworkDeleted is set once CNI DEL has succeeded, so stopping a
	// stopped sandbox again (RemovePodSandbox does) skips the plugins.
	NetworkDeleted bool `json:"networkDeleted,omitempty"`
}

type envelope struct {
	Version  int             `json:"version"`
	Checksum string          `json:"checksum"`
	Data     json.RawMessage `json:"data"`
}

const (
	checkpointFile    = "checkpoint.json"
	checkpointVersion = 1
)

// Store holds the sandbox directories under one root.
type Store struct {
	root string
}

// NewStore returns a store rooted at dir, creating it (mode 0700).
func NewStore(dir string) (*Store, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("sandbox store %q: %w: not absolute", dir, errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox store: %w", err)
	}
	return &Store{root: dir}, nil
}

// Docker IDs are 64 hex digits; anything else never becomes a path.
var idPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Dir is the directory of sandbox id.
func (s *Store) Dir(id string) (string, error) {
	if !idPattern.MatchString(id) {
		return "", fmt.Errorf("sandbox id %q: %w", id, errdefs.ErrInvalidArgument)
	}
	return filepath.Join(s.root, id), nil
}

// Write saves cp atomically.
func (s *Store) Write(cp Checkpoint) error {
	dir, err := s.Dir(cp.ID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("checkpoint %s: %w", cp.ID, err)
	}
	data, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", cp.ID, err)
	}
	sum := sha256.Sum256(data)
	b, err := json.Marshal(envelope{Version: checkpointVersion, Checksum: hex.EncodeToString(sum[:]), Data: data})
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", cp.ID, err)
	}
	if err := writeAtomic(filepath.Join(dir, checkpointFile), b, 0o600, true); err != nil {
		return fmt.Errorf("checkpoint %s: %w", cp.ID, err)
	}
	return nil
}

// Read loads the checkpoint of sandbox id; a missing one is
// errdefs.ErrNotFound, a corrupt one errdefs.ErrDataLoss.
func (s *Store) Read(id string) (Checkpoint, error) {
	dir, err := s.Dir(id)
	if err != nil {
		return Checkpoint{}, err
	}
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: %w", id, err)
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: %w: %v", id, errdefs.ErrDataLoss, err)
	}
	sum := sha256.Sum256(env.Data)
	if env.Checksum != hex.EncodeToString(sum[:]) {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: %w: checksum mismatch", id, errdefs.ErrDataLoss)
	}
	var cp Checkpoint
	if err := json.Unmarshal(env.Data, &cp); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: %w: %v", id, errdefs.ErrDataLoss, err)
	}
	return cp, nil
}

// Remove deletes everything berth keeps for sandbox id. Removing what is
// not there succeeds.
func (s *Store) Remove(id string) error {
	dir, err := s.Dir(id)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove sandbox dir %s: %w", id, err)
	}
	return nil
}

// List returns the ids of every sandbox with a directory.
func (s *Store) List() ([]string, error) {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && idPattern.MatchString(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// writeAtomic replaces path with data through a rename, so readers see the
// old or the new content, never a mix. With durable, the data reaches the
// disk before the rename: a crash cannot leave an empty file behind.
func writeAtomic(path string, data []byte, mode os.FileMode, durable bool) (retErr error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
