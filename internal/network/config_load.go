package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/utils"
)

// config is the network config in use and the file it came from.
type config struct {
	file string
	list *libcni.NetworkConfigList
}

// confExtensions are the extensions of network config files, as the kubelet
// and containerd read them.
var confExtensions = []string{".conflist", ".conf", ".json"}

// loadConfig returns the network config of dir: its first *.conflist,
// *.conf or *.json file in lexical order. A .conf or .json file holds a
// single plugin and is wrapped into a list. If that first file is not a
// valid config, loadConfig fails rather than fall back to a later file,
// so that pods never land on a network the administrator ranked lower.
func loadConfig(dir string) (*config, error) {
	files, err := libcni.ConfFiles(dir, confExtensions)
	if err != nil {
		return nil, fmt.Errorf("read network config dir %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no network config found in %s", dir)
	}
	slices.Sort(files)
	file := files[0]
	list, err := loadConfigFile(file)
	if err != nil {
		return nil, fmt.Errorf("load network config %s: %w", file, err)
	}
	return &config{file: file, list: list}, nil
}

// loadConfigFile parses one network config file into a list whose Bytes
// hold every plugin inline, so that the copy libcni caches at ADD is
// complete for DEL.
func loadConfigFile(file string) (*libcni.NetworkConfigList, error) {
	var (
		list *libcni.NetworkConfigList
		err  error
	)
	if filepath.Ext(file) == ".conflist" {
		list, err = libcni.NetworkConfFromFile(file)
	} else {
		list, err = wrapPluginFile(file)
	}
	if err != nil {
		return nil, err
	}
	if len(list.Plugins) == 0 {
		return nil, errors.New("no plugins")
	}
	if err := utils.ValidateNetworkName(list.Name); err != nil {
		return nil, err
	}
	return inlinePlugins(list)
}

// wrapPluginFile reads a single-plugin config (.conf, .json) as a list of
// that one plugin.
func wrapPluginFile(file string) (*libcni.NetworkConfigList, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	plugin, err := libcni.NetworkPluginConfFromBytes(data)
	if err != nil {
		return nil, err
	}
	raw := map[string]any{
		"name":       plugin.Network.Name,
		"cniVersion": plugin.Network.CNIVersion,
		"plugins":    []json.RawMessage{plugin.Bytes},
	}
	data, err = json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	return libcni.NetworkConfFromBytes(data)
}

// inlinePlugins rewrites list.Bytes so the "plugins" key holds all of
// list.Plugins, including any libcni loaded from the network's plugin
// directory.
func inlinePlugins(list *libcni.NetworkConfigList) (*libcni.NetworkConfigList, error) {
	raw := map[string]json.RawMessage{}
	if err := json.Unmarshal(list.Bytes, &raw); err != nil {
		return nil, err
	}
	var inline []json.RawMessage
	if p, ok := raw["plugins"]; ok {
		if err := json.Unmarshal(p, &inline); err != nil {
			return nil, err
		}
	}
	if len(inline) == len(list.Plugins) {
		return list, nil
	}
	plugins := make([]json.RawMessage, 0, len(list.Plugins))
	for _, p := range list.Plugins {
		plugins = append(plugins, p.Bytes)
	}
	b, err := json.Marshal(plugins)
	if err != nil {
		return nil, err
	}
	raw["plugins"] = b
	raw["loadOnlyInlinedPlugins"] = json.RawMessage("true")
	data, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	return libcni.NetworkConfFromBytes(data)
}
