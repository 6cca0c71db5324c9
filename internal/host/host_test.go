package host

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/berth-project/berth/internal/translate"
	"github.com/google/go-cmp/cmp"
)

const statusTemplate = `Name:	berth
Umask:	0022
State:	R (running)
CapInh:	0000000000000000
CapPrm:	%[2]s
CapEff:	%[2]s
CapBnd:	%[1]s
CapAmb:	0000000000000000
NoNewPrivs:	0
`

func status(bnd, eff string) []byte {
	return []byte(fmt.Sprintf(statusTemplate, bnd, eff))
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		want    capabilitySets
		wantErr bool
	}{
		{
			name: "all of 41",
			data: status("000001ffffffffff", "000001ffffffffff"),
			want: capabilitySets{Bounding: 0x1ffffffffff, Effective: 0x1ffffffffff},
		},
		{
			name: "no CAP_SYS_RESOURCE",
			data: status("000001fffeffffff", "0000000000000000"),
			want: capabilitySets{Bounding: 0x1fffeffffff},
		},
		{name: "missing CapEff", data: []byte("CapBnd:\t000001ffffffffff\n"), wantErr: true},
		{name: "missing CapBnd", data: []byte("CapEff:\t000001ffffffffff\n"), wantErr: true},
		{name: "not hex", data: status("xyz", "0"), wantErr: true},
		{name: "empty", data: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus(tt.data)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStatus() error = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseStatus() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCapabilityList(t *testing.T) {
	tests := []struct {
		name string
		mask uint64
		want []string
	}{
		{name: "none", mask: 0, want: []string{}},
		{name: "chown and checkpoint_restore", mask: 1 | 1<<40, want: []string{"CAP_CHOWN", "CAP_CHECKPOINT_RESTORE"}},
		{name: "unknown bits ignored", mask: 1<<12 | 1<<41 | 1<<63, want: []string{"CAP_NET_ADMIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, capabilityList(tt.mask)); diff != "" {
				t.Errorf("capabilityList(%#x) mismatch (-want +got):\n%s", tt.mask, diff)
			}
		})
	}
	if got := capabilityList(allCapabilities); len(got) != 41 {
		t.Errorf("capabilityList(all) has %d names, want 41", len(got))
	}
	for bit, name := range capabilityNames {
		if name == "" {
			t.Errorf("capability bit %d has no name", bit)
		}
	}
}

func TestParseOOMScoreAdj(t *testing.T) {
	tests := []struct {
		data    string
		want    int
		wantErr bool
	}{
		{data: "0\n", want: 0},
		{data: "-998\n", want: -998},
		{data: "1000", want: 1000},
		{data: "-1001\n", wantErr: true},
		{data: "", wantErr: true},
		{data: "abc", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseOOMScoreAdj([]byte(tt.data))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseOOMScoreAdj(%q) = %d, %v; want %d, error %v", tt.data, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseAppArmor(t *testing.T) {
	for data, want := range map[string]bool{"Y\n": true, "Y": true, "N\n": false, "": false, "y": false} {
		if got := parseAppArmor([]byte(data)); got != want {
			t.Errorf("parseAppArmor(%q) = %v, want %v", data, got, want)
		}
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    translate.Host
		wantErr bool
	}{
		{
			name: "privileged, apparmor on",
			files: map[string]string{
				statusFile:   string(status("000001ffffffffff", "000001ffffffffff")),
				oomScoreFile: "-500\n",
				appArmorFile: "Y\n",
			},
			want: translate.Host{
				Capabilities:    capabilityList(allCapabilities),
				AllCapabilities: true,
				MinOOMScoreAdj:  -1000,
				AppArmor:        true,
			},
		},
		{
			name: "no CAP_SYS_RESOURCE, no apparmor module",
			files: map[string]string{
				statusFile:   string(status("000001fffeffffff", "000001fffeffffff")),
				oomScoreFile: "0\n",
			},
			want: translate.Host{
				Capabilities:   capabilityList(allCapabilities &^ (1 << capSysResource)),
				MinOOMScoreAdj: 0,
			},
		},
		{
			name: "missing oom_score_adj without CAP_SYS_RESOURCE",
			files: map[string]string{
				statusFile: string(status("000001fffeffffff", "0")),
			},
			wantErr: true,
		},
		{
			name:    "missing status",
			files:   map[string]string{},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := func(name string) ([]byte, error) {
				data, ok := tt.files[name]
				if !ok {
					return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
				}
				return []byte(data), nil
			}
			got, err := detect(read)
			if (err != nil) != tt.wantErr {
				t.Fatalf("detect() error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("detect() error = %v, want it to wrap fs.ErrNotExist", err)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("detect() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDetectThisHost(t *testing.T) {
	h, err := Detect()
	if err != nil {
		t.Fatalf("Detect() = %v", err)
	}
	if len(h.Capabilities) == 0 && h.AllCapabilities {
		t.Errorf("Detect() = %+v: AllCapabilities without capabilities", h)
	}
	t.Log(Describe(h))
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		name string
		host translate.Host
		want string
	}{
		{
			name: "missing one",
			host: translate.Host{Capabilities: capabilityList(allCapabilities &^ (1 << capSysResource))},
			want: "capabilities: 40 of 41 (missing CAP_SYS_RESOURCE); min oom_score_adj: 0; apparmor: off",
		},
		{
			name: "all",
			host: translate.Host{Capabilities: capabilityList(allCapabilities), AllCapabilities: true, MinOOMScoreAdj: -1000, AppArmor: true},
			want: "capabilities: 41 of 41; min oom_score_adj: -1000; apparmor: on",
		},
		{
			name: "few",
			host: translate.Host{Capabilities: capabilityList(allCapabilities &^ (1<<39 | 1<<40)), MinOOMScoreAdj: -998},
			want: "capabilities: 39 of 41 (missing CAP_BPF, CAP_CHECKPOINT_RESTORE); min oom_score_adj: -998; apparmor: off",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Describe(tt.host); got != tt.want {
				t.Errorf("Describe() = %q, want %q", got, tt.want)
			}
		})
	}
}
