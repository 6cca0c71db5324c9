//go:build linux

package network

import (
	"slices"
	"strings"
	"testing"
)

// iptablesRule is one line of iptables-save: a table ("" line), a chain
// (":NAME ...") or a rule ("-A CHAIN ..."), with the family and table it
// is in.
type iptablesRule struct {
	cmd   string // iptables or ip6tables
	table string
	line  string
}

// iptablesRules returns every table, chain and rule of both families,
// without counters.
func iptablesRules(t *testing.T) []iptablesRule {
	t.Helper()
	var rules []iptablesRule
	for _, cmd := range []string{"iptables", "ip6tables"} {
		out, err := run(cmd + "-save")
		if err != nil {
			t.Fatalf("%s-save: %v: %s", cmd, err, out)
		}
		var table string
		for _, line := range strings.Split(out, "\n") {
			switch {
			case strings.HasPrefix(line, "*"):
				table = line[1:]
				rules = append(rules, iptablesRule{cmd, table, ""})
			case strings.HasPrefix(line, ":"):
				// ":NAME POLICY [pkts:bytes]"
				fields := strings.Fields(line)
				rules = append(rules, iptablesRule{cmd, table, strings.Join(fields[:min(2, len(fields))], " ")})
			case strings.HasPrefix(line, "-A "):
				rules = append(rules, iptablesRule{cmd, table, line})
			}
		}
	}
	return rules
}

// portmapChains are the chains portmap shares between sandboxes and never
// deletes.
var portmapChains = []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"}

// restoreIptables undoes what the test's plugins left in iptables since
// before was taken, touching nothing another user of the machine may own:
//   - rules commented with the test network's name (a sandbox's portmap or
//     masquerade rules: a leak, reported) and the CNI chains they jump to;
//   - portmap's shared chains and the rules jumping to them, if they are
//     new and no sandbox rule is left in CNI-HOSTPORT-DNAT;
//   - tables created since that hold no rule (portmap's DEL makes the ip6
//     nat table).
//
// It then reports any rule that still mentions the test network, bridge
// or subnet.
func restoreIptables(t *testing.T, before []iptablesRule, network, bridge, subnet string) {
	t.Helper()
	ipt := func(cmd, table string, args ...string) {
		t.Helper()
		if out, err := run(cmd, append([]string{"-t", table}, args...)...); err != nil {
			t.Errorf("%s -t %s %s: %v: %s", cmd, table, strings.Join(args, " "), err, out)
		}
	}
	mine := `\"` + network + `\"`
	for _, r := range iptablesRules(t) {
		if !strings.HasPrefix(r.line, "-A ") || !strings.Contains(r.line, mine) {
			continue
		}
		t.Errorf("left in %s table %s: %s", r.cmd, r.table, r.line)
		args := splitRule(r.line)
		args[0] = "-D"
		ipt(r.cmd, r.table, args...)
		if target := jumpTarget(args); strings.HasPrefix(target, "CNI-") && !slices.Contains(portmapChains, target) {
			ipt(r.cmd, r.table, "-F", target)
			ipt(r.cmd, r.table, "-X", target)
		}
	}

	for _, cmd := range []string{"iptables", "ip6tables"} {
		now := iptablesRules(t)
		existed := slices.ContainsFunc(before, func(r iptablesRule) bool {
			return r.cmd == cmd && r.table == "nat" && r.line == ":"+portmapChains[0]+" -"
		})
		inUse := slices.ContainsFunc(now, func(r iptablesRule) bool {
			return r.cmd == cmd && r.table == "nat" && strings.HasPrefix(r.line, "-A "+portmapChains[0]+" ")
		})
		if existed || inUse {
			continue
		}
		for _, r := range now {
			args := splitRule(r.line)
			if r.cmd != cmd || r.table != "nat" || len(args) < 2 || args[0] != "-A" || slices.Contains(before, r) ||
				slices.Contains(portmapChains, args[1]) || !slices.Contains(portmapChains, jumpTarget(args)) {
				continue
			}
			args[0] = "-D"
			ipt(cmd, "nat", args...)
		}
		for _, c := range portmapChains {
			if slices.Contains(now, iptablesRule{cmd, "nat", ":" + c + " -"}) {
				ipt(cmd, "nat", "-F", c)
			}
		}
		for _, c := range portmapChains {
			if slices.Contains(now, iptablesRule{cmd, "nat", ":" + c + " -"}) {
				ipt(cmd, "nat", "-X", c)
			}
		}
	}

	after := iptablesRules(t)
	for _, r := range after {
		if r.line != "" || slices.Contains(before, r) {
			continue
		}
		inUse := slices.ContainsFunc(after, func(o iptablesRule) bool {
			return o.cmd == r.cmd && o.table == r.table && strings.HasPrefix(o.line, "-A ")
		})
		if !inUse {
			deleteTable(t, r.cmd, r.table)
		}
	}
	for _, r := range iptablesRules(t) {
		if strings.Contains(r.line, mine) || strings.Contains(r.line, bridge) || strings.Contains(r.line, subnet) {
			t.Errorf("left in %s table %s: %s", r.cmd, r.table, r.line)
		}
	}
}

// jumpTarget returns the chain a rule's arguments jump to, or "".
func jumpTarget(args []string) string {
	if i := slices.Index(args, "-j"); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// deleteTable deletes an empty iptables table, which only the nf_tables
// backend can do (with nft).
func deleteTable(t *testing.T, cmd, table string) {
	t.Helper()
	if out, err := run(cmd, "-V"); err != nil || !strings.Contains(out, "nf_tables") {
		t.Logf("%s table %s was created by the test and stays: not the nf_tables backend", cmd, table)
		return
	}
	family := map[string]string{"iptables": "ip", "ip6tables": "ip6"}[cmd]
	if out, err := run("nft", "delete", "table", family, table); err != nil {
		t.Errorf("nft delete table %s %s: %v: %s", family, table, err, out)
	}
}

// splitRule splits an iptables-save rule into arguments, honouring the
// double quotes iptables-save puts around comments.
func splitRule(line string) []string {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			inQuote = !inQuote
			have = true
		case c == ' ' && !inQuote:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}

func TestSplitRule(t *testing.T) {
	got := splitRule(`-A POSTROUTING -m comment --comment "CNI portfwd \"x\" masq" -j CNI-HOSTPORT-MASQ`)
	want := []string{"-A", "POSTROUTING", "-m", "comment", "--comment", `CNI portfwd "x" masq`, "-j", "CNI-HOSTPORT-MASQ"}
	if !slices.Equal(got, want) {
		t.Errorf("splitRule() = %q, want %q", got, want)
	}
}
