//go:build linux

package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// printBreakdowns writes each variant's steps to stdout.
func printBreakdowns(variants []variant, res map[string][]sample) {
	var out strings.Builder
	for _, v := range variants {
		fmt.Fprintf(&out, "\nsteps of %s (median ms per pod; calls per pod):\n", v.name)
		breakdown(&out, res[v.name])
	}
	fmt.Print(out.String())
}

// summary writes the medians and spread of start and teardown, one line
// per variant after the header.
func summary(out *strings.Builder, variants []variant, res map[string][]sample) {
	fmt.Fprintf(out, "%-28s %3s | start ms: %6s %6s %6s | teardown ms: %6s %6s %6s", "variant", "n", "median", "p10", "p90", "median", "p10", "p90")
	for _, v := range variants {
		st := durations(res[v.name], func(s sample) time.Duration { return s.start })
		td := durations(res[v.name], func(s sample) time.Duration { return s.teardown })
		fmt.Fprintf(out, "\n%-28s %3d |           %6.1f %6.1f %6.1f |              %6.1f %6.1f %6.1f", v.name, len(st),
			ms(median(st)), ms(quantile(st, 0.1)), ms(quantile(st, 0.9)),
			ms(median(td)), ms(quantile(td, 0.1)), ms(quantile(td, 0.9)))
	}
}

// breakdown writes each step's median time per pod. For berth's RPCs it
// adds the handler time not spent in Docker or CNI calls ("in berth") and
// the time outside the handler ("grpc").
func breakdown(out *strings.Builder, ss []sample) {
	if len(ss) == 0 {
		return
	}
	var order []string
	for _, s := range ss {
		for _, n := range s.steps.order {
			if !slices.Contains(order, n) {
				order = append(order, n)
			}
		}
	}
	rpcs := map[string]bool{}
	for _, n := range order {
		if rpc, ok := strings.CutSuffix(n, "/handler"); ok {
			rpcs[rpc] = true
		}
	}
	row := func(name string, f func(*steps) time.Duration, calls float64) {
		var ds []time.Duration
		for _, s := range ss {
			ds = append(ds, f(s.steps))
		}
		fmt.Fprintf(out, "  %-44s %8.2f", name, ms(median(ds)))
		if calls > 0 {
			fmt.Fprintf(out, "  x%g", calls)
		}
		out.WriteString("\n")
	}
	// An RPC's own step comes after its calls and its handler time.
	for _, n := range order {
		if strings.HasSuffix(n, "/handler") {
			continue
		}
		if !rpcs[n] {
			row(n, func(s *steps) time.Duration { return s.total[n] }, float64(ss[0].steps.counts[n]))
			continue
		}
		rpc := n
		row(rpc+"/in berth", func(s *steps) time.Duration {
			d := s.total[rpc+"/handler"]
			for _, m := range s.order {
				if strings.HasPrefix(m, rpc+"/") && m != rpc+"/handler" {
					d -= s.total[m]
				}
			}
			return d
		}, 0)
		row(rpc+"/grpc", func(s *steps) time.Duration { return s.total[rpc] - s.total[rpc+"/handler"] }, 0)
		row(rpc+" (total)", func(s *steps) time.Duration { return s.total[rpc] }, 0)
	}
}

func durations(ss []sample, f func(sample) time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(ss))
	for _, s := range ss {
		out = append(out, f(s))
	}
	return out
}

func median(ds []time.Duration) time.Duration { return quantile(ds, 0.5) }

// quantile is the q-quantile of ds, interpolating between neighbours.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	frac := pos - float64(i)
	return s[i] + time.Duration(frac*float64(s[i+1]-s[i]))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
