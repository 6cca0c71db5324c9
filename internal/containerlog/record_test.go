package containerlog

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var ts0 = time.Date(2026, 11, 26, 21, 35, 18, 730708311, time.UTC)

func TestAppendRecord(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ts      time.Time
		stream  string
		partial bool
		text    string
		want    string
	}{
		{"full", ts0, StreamStdout, false, "hello", "2026-11-26T21:35:18.730708311Z stdout F hello\n"},
		{"partial stderr", ts0, StreamStderr, true, "he", "2026-11-26T21:35:18.730708311Z stderr P he\n"},
		{"empty line", ts0, StreamStdout, false, "", "2026-11-26T21:35:18.730708311Z stdout F \n"},
		{"trailing zeros trimmed", time.Date(2026, 1, 2, 3, 4, 5, 100000000, time.UTC), StreamStdout, false, "x", "2026-01-02T03:04:05.1Z stdout F x\n"},
		{"whole second", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), StreamStdout, false, "x", "2026-01-02T03:04:05Z stdout F x\n"},
		{"local time is written as UTC", ts0.In(time.FixedZone("X", 3600)), StreamStdout, false, "x", "2026-11-26T21:35:18.730708311Z stdout F x\n"},
		{"binary kept", ts0, StreamStdout, false, "a\x00\xff\xfe\r\tb", "2026-11-26T21:35:18.730708311Z stdout F a\x00\xff\xfe\r\tb\n"},
		{"spaces kept", ts0, StreamStdout, false, " a  b ", "2026-11-26T21:35:18.730708311Z stdout F  a  b \n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(AppendRecord([]byte("prefix|"), tc.ts, tc.stream, tc.partial, []byte(tc.text)))
			if diff := cmp.Diff("prefix|"+tc.want, got); diff != "" {
				t.Errorf("AppendRecord (-want +got):\n%s", diff)
			}
			r, err := ParseRecord([]byte(tc.want))
			if err != nil {
				t.Fatalf("ParseRecord: %v", err)
			}
			if !r.Time.Equal(tc.ts) || r.Stream != tc.stream || r.Partial != tc.partial || string(r.Text) != tc.text {
				t.Errorf("ParseRecord = %v %s %v %q, want %v %s %v %q", r.Time, r.Stream, r.Partial, r.Text, tc.ts, tc.stream, tc.partial, tc.text)
			}
		})
	}
}

func TestParseRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		want Record // Text compared as string
		err  bool
	}{
		{name: "no newline", line: "2026-11-26T21:35:18Z stdout F a b", want: Record{Time: ts0.Truncate(time.Second), Stream: StreamStdout, Text: []byte("a b")}},
		{name: "extra tags", line: "2026-11-26T21:35:18Z stderr P:x:y text\n", want: Record{Time: ts0.Truncate(time.Second), Stream: StreamStderr, Partial: true, Text: []byte("text")}},
		{name: "no text delimiter", line: "2026-11-26T21:35:18Z stdout F\n", want: Record{Time: ts0.Truncate(time.Second), Stream: StreamStdout, Text: []byte("")}},
		{name: "offset zone", line: "2026-11-26T22:35:18+01:00 stdout F x", want: Record{Time: ts0.Truncate(time.Second), Stream: StreamStdout, Text: []byte("x")}},
		{name: "empty", line: "", err: true},
		{name: "bad time", line: "yesterday stdout F x", err: true},
		{name: "bad stream", line: "2026-11-26T21:35:18Z stdin F x", err: true},
		{name: "bad tag", line: "2026-11-26T21:35:18Z stdout X x", err: true},
		{name: "no stream", line: "2026-11-26T21:35:18Z", err: true},
		{name: "no tag", line: "2026-11-26T21:35:18Z stdout", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRecord([]byte(tc.line))
			if tc.err {
				if !errors.Is(err, ErrMalformedRecord) {
					t.Fatalf("ParseRecord(%q) error = %v, want ErrMalformedRecord", tc.line, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !r.Time.Equal(tc.want.Time) || r.Stream != tc.want.Stream || r.Partial != tc.want.Partial || string(r.Text) != string(tc.want.Text) {
				t.Errorf("ParseRecord(%q) = %+v, want %+v", tc.line, r, tc.want)
			}
		})
	}
}

func TestAppendLineSplits(t *testing.T) {
	type rec struct {
		Partial bool
		Len     int
	}
	for _, tc := range []struct {
		name    string
		n       int
		partial bool
		want    []rec
	}{
		{"empty line", 0, false, []rec{{false, 0}}},
		{"empty partial", 0, true, nil},
		{"short", 10, false, []rec{{false, 10}}},
		{"exactly 16 KiB", MaxRecordText, false, []rec{{false, MaxRecordText}}},
		{"16 KiB + 1", MaxRecordText + 1, false, []rec{{true, MaxRecordText}, {false, 1}}},
		{"40 KiB", 40 * 1024, false, []rec{{true, MaxRecordText}, {true, MaxRecordText}, {false, 8 * 1024}}},
		{"40 KiB partial", 40 * 1024, true, []rec{{true, MaxRecordText}, {true, MaxRecordText}, {true, 8 * 1024}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := bytes.Repeat([]byte("abcdefg"), tc.n/7+1)[:tc.n]
			out := AppendLine(nil, ts0, StreamStdout, text, tc.partial)
			var got []rec
			var joined []byte
			for l := range bytes.Lines(out) {
				r, err := ParseRecord(l)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rec{r.Partial, len(r.Text)})
				joined = append(joined, r.Text...)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			if !bytes.Equal(joined, text) {
				t.Errorf("reassembled text differs")
			}
		})
	}
}

func TestParseDockerTime(t *testing.T) {
	for _, s := range []string{
		"2026-11-26T21:35:18.730708311Z",
		"2026-11-26T21:35:18.000000000Z",
		"2024-02-29T23:59:59.999999999Z",
		"2026-11-26T22:35:18.730708311+01:00",
		"2026-11-26T21:35:18.7307Z",
	} {
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseDockerTime([]byte(s))
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("parseDockerTime(%q) = %v, %v; want %v UTC", s, got, err, want)
		}
	}
	for _, s := range []string{"", "2026-02-30T21:35:18.730708311Z", "2026-11-26T21:35:18.73070831xZ", strings.Repeat("9", 30)} {
		if _, err := parseDockerTime([]byte(s)); err == nil {
			t.Errorf("parseDockerTime(%q) succeeded", s)
		}
	}
}
