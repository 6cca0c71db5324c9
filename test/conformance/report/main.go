// Command report reads what critest leaves behind for hack/conformance.sh:
//
//	report skips SKIPFILE              the skip list's regexes, one a line (for -ginkgo.skip)
//	report skipcheck SKIPFILE JUNIT    every regex matches exactly one spec of a dry run
//	report summary [-exclude RE] [-crashed FILE] JUNIT
//	                                   failed specs with their key line, specs critest
//	                                   skipped itself, then "N passed, M failed, K skipped"
//	report crashed LOG                 the spec a critest -ginkgo.v run died in, as
//	                                   "REGEX<TAB>SPEC<TAB>KEY LINE" (nothing if none)
//	report bench DIR                   the medians of critest -benchmark's data files
//	report listbench -endpoint E -image I [-n N]
//	                                   the median of ListContainers with N pods running
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "report: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: report skips|skipcheck|summary|crashed|bench|listbench ...")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "skips":
		if len(rest) != 1 {
			return errors.New("usage: report skips SKIPFILE")
		}
		skips, err := readSkips(rest[0])
		if err != nil {
			return err
		}
		for _, s := range skips {
			fmt.Fprintln(out, s.re.String())
		}
		return nil
	case "skipcheck":
		if len(rest) != 2 {
			return errors.New("usage: report skipcheck SKIPFILE JUNIT")
		}
		return skipCheck(rest[0], rest[1], out)
	case "summary":
		fs := flag.NewFlagSet("summary", flag.ContinueOnError)
		exclude := fs.String("exclude", "", "leave out specs whose name matches this regex")
		crashedFile := fs.String("crashed", "", "specs critest died in (report crashed's lines): failed")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("usage: report summary [-exclude RE] [-crashed FILE] JUNIT")
		}
		return summary(fs.Arg(0), *exclude, *crashedFile, out)
	case "crashed":
		if len(rest) != 1 {
			return errors.New("usage: report crashed LOG")
		}
		return crashed(rest[0], out)
	case "bench":
		if len(rest) != 1 {
			return errors.New("usage: report bench DIR")
		}
		return bench(rest[0], out)
	case "listbench":
		return listBench(rest, out)
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// skip is one line of the skip list: a regex for ginkgo's -skip, then
// whitespace and "# reason".
type skip struct {
	line   int
	re     *regexp.Regexp
	reason string
}

var skipLine = regexp.MustCompile(`^(\S.*?)\s+#\s*(\S.*)$`)

func readSkips(path string) ([]skip, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var skips []skip
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := skipLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("%s:%d: want `REGEX  # reason`", path, n)
		}
		re, err := regexp.Compile(m[1])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		skips = append(skips, skip{line: n, re: re, reason: m[2]})
	}
	return skips, sc.Err()
}

// JUnit as ginkgo v2 writes it (reporters/junit_report.go), the parts read here.
type junitSuites struct {
	Suites []struct {
		Cases []junitCase `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitCase struct {
	Name    string  `xml:"name,attr"`
	Status  string  `xml:"status,attr"`
	Time    float64 `xml:"time,attr"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
	Failure *junitFailure `xml:"failure"`
	Error   *junitFailure `xml:"error"`
}

type junitFailure struct {
	Message     string `xml:"message,attr"`
	Type        string `xml:"type,attr"`
	Description string `xml:",chardata"`
}

func readJUnit(path string) ([]junitCase, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s junitSuites
	if err := xml.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var cases []junitCase
	for _, suite := range s.Suites {
		cases = append(cases, suite.Cases...)
	}
	return cases, nil
}

// specText is the text ginkgo's -skip matches: the name without its "[It] " prefix.
func specText(c junitCase) string {
	if rest, ok := strings.CutPrefix(c.Name, "[It] "); ok {
		return rest
	}
	return c.Name
}

func isSpec(c junitCase) bool { return strings.HasPrefix(c.Name, "[It] ") }

func skipCheck(skipFile, junit string, out io.Writer) error {
	skips, err := readSkips(skipFile)
	if err != nil {
		return err
	}
	cases, err := readJUnit(junit)
	if err != nil {
		return err
	}
	var bad []string
	for _, s := range skips {
		n := 0
		for _, c := range cases {
			if isSpec(c) && s.re.MatchString(specText(c)) {
				n++
			}
		}
		if n != 1 {
			bad = append(bad, fmt.Sprintf("%s:%d matches %d specs, not one: %s", skipFile, s.line, n, s.re))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "\n"))
	}
	fmt.Fprintf(out, "skip list: %d specs, each line matches one\n", len(skips))
	return nil
}

var failedStates = []string{"failed", "timedout", "interrupted", "aborted", "panicked"}

func summary(junit, exclude, crashedFile string, out io.Writer) error {
	cases, err := readJUnit(junit)
	if err != nil {
		return err
	}
	// spec text -> key line of the specs critest died in; the runs after
	// each crash skipped them.
	died := map[string]string{}
	if crashedFile != "" {
		b, err := os.ReadFile(crashedFile)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.SplitN(l, "\t", 3); len(f) == 3 {
				died[f[1]] = cmp.Or(f[2], "(no error message in the log)")
			}
		}
	}
	var ex *regexp.Regexp
	if exclude != "" {
		if ex, err = regexp.Compile(exclude); err != nil {
			return err
		}
	}
	var passed, skipped int
	var failed, selfSkipped []string
	for _, c := range cases {
		if ex != nil && ex.MatchString(c.Name) {
			continue
		}
		key, crashedHere := died[specText(c)]
		if !crashedHere {
			// names carry ginkgo's labels (" [Serial]"), the log does not
			for text, k := range died {
				if strings.HasPrefix(specText(c), text+" [") {
					key, crashedHere = k, true
				}
			}
		}
		switch {
		case crashedHere:
			failed = append(failed, fmt.Sprintf("FAILED %s\n    critest died during this spec (the suite ran again without it): %s", specText(c), key))
		case slices.Contains(failedStates, c.Status):
			f := c.Failure
			if f == nil {
				f = c.Error
			}
			line := fmt.Sprintf("FAILED %s\n    %s", specText(c), keyLine(f))
			failed = append(failed, line)
		case !isSpec(c):
			// A passing suite node (BeforeSuite ...) is not a spec.
		case c.Status == "passed":
			passed++
		case c.Status == "skipped" || c.Status == "pending":
			skipped++
			if c.Skipped != nil && c.Skipped.Message != "skipped" && c.Skipped.Message != "" {
				msg := strings.TrimPrefix(c.Skipped.Message, "skipped - ")
				selfSkipped = append(selfSkipped, fmt.Sprintf("SKIPPED by critest: %s\n    %s", specText(c), firstLine(msg)))
			}
		default:
			return fmt.Errorf("%s: unknown status %q", c.Name, c.Status)
		}
	}
	slices.Sort(selfSkipped)
	slices.Sort(failed)
	for _, s := range selfSkipped {
		fmt.Fprintln(out, s)
	}
	for _, f := range failed {
		fmt.Fprintln(out, f)
	}
	fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", passed, len(failed), skipped)
	return nil
}

var (
	locationRE = regexp.MustCompile(`(?m)^\s*In \[[^\]]+\] at: (\S+):(\d+)`)
	spaces     = regexp.MustCompile(`\s+`)
)

// keyLine is the line of a failure that says what went wrong: a gRPC
// status if there is one, else gomega's message folded onto one line; with
// the spec file and line the failure happened at.
func keyLine(f *junitFailure) string {
	if f == nil {
		return "(no failure message)"
	}
	msg := f.Message
	if msg == "" {
		msg = f.Description
	}
	var key string
	for _, l := range strings.Split(msg, "\n") {
		if i := strings.Index(l, "rpc error:"); i >= 0 {
			key = strings.TrimSpace(l[i:])
			break
		}
	}
	if key == "" {
		lines := strings.Split(strings.TrimSpace(msg), "\n")
		if len(lines) > 8 {
			lines = lines[:8]
		}
		key = spaces.ReplaceAllString(strings.Join(lines, " "), " ")
	}
	if len(key) > 400 {
		key = key[:400] + "..."
	}
	if m := locationRE.FindStringSubmatch(f.Description); m != nil {
		key = fmt.Sprintf("%s:%s: %s", filepath.Base(m[1]), m[2], key)
	}
	if f.Type != "" && f.Type != "failed" {
		key = "[" + f.Type + "] " + key
	}
	return key
}

// crashed finds, in a critest -ginkgo.v log, the spec that started and never
// finished: ginkgo prints a separator, the spec's text and its location when
// a spec starts, and a line starting with "•", "S [" or "P [" when it ends.
func crashed(logFile string, out io.Writer) error {
	b, err := os.ReadFile(logFile)
	if err != nil {
		return err
	}
	const sep = "------------------------------"
	lines := strings.Split(string(b), "\n")
	text, start, done := "", 0, true
	for i := 0; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\r")
		if l == sep && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "[k8s.io] ") {
			text, start, done = lines[i+1], i+2, false
			i++
			continue
		}
		if !done && (strings.HasPrefix(l, "•") || strings.HasPrefix(l, "S [") || strings.HasPrefix(l, "P [")) {
			done = true
		}
	}
	if text == "" || done {
		return nil
	}
	key := ""
	for _, l := range lines[start:] {
		if i := strings.Index(l, "rpc error:"); i >= 0 {
			key = strings.TrimSpace(l[i:]) // the last one: closest to the panic
		}
	}
	if key == "" {
		for _, l := range lines[start:] {
			if strings.Contains(l, "panic") {
				key = strings.TrimSpace(l)
				break
			}
		}
	}
	if len(key) > 400 {
		key = key[:400] + "..."
	}
	fmt.Fprintf(out, "%s\t%s\t%s\n", regexp.QuoteMeta(text), text, key)
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// benchData is a file critest -benchmark writes (benchmark/util.go).
type benchData struct {
	OperationsNames []string `json:"operationsNames"`
	Datapoints      []struct {
		OperationsDurationsNs []int64 `json:"operationsDurationsNs"`
	} `json:"datapoints"`
}

func bench(dir string, out io.Writer) error {
	files, err := filepath.Glob(filepath.Join(dir, "*_benchmark_data.json"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no *_benchmark_data.json in %s", dir)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		var d benchData
		if err := json.Unmarshal(b, &d); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		fmt.Fprintf(out, "%s (%d samples):\n", strings.TrimSuffix(filepath.Base(file), "_benchmark_data.json"), len(d.Datapoints))
		for i, op := range d.OperationsNames {
			var ds []int64
			for _, p := range d.Datapoints {
				if i < len(p.OperationsDurationsNs) {
					ds = append(ds, p.OperationsDurationsNs[i])
				}
			}
			if len(ds) == 0 {
				continue
			}
			slices.Sort(ds)
			fmt.Fprintf(out, "  %-16s median %8s  min %8s  max %8s\n", op,
				dur(median(ds)), dur(ds[0]), dur(ds[len(ds)-1]))
		}
	}
	return nil
}

func median(sorted []int64) int64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func dur(ns int64) string {
	return time.Duration(ns).Round(10 * time.Microsecond).String()
}
