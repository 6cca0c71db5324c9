// Package cli holds berth's cobra commands. Commands parse flags into
// config values and wire packages together; they hold no runtime logic.
package cli

import (
	"io"
	"log/slog"

	"github.com/spf13/cobra"
)

// NewRoot returns the berth command with its subcommands. Output goes to
// out and errOut, so tests can run commands in-process.
func NewRoot(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Run Kubernetes pods on Docker Engine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.AddCommand(newServe(errOut))
	root.AddCommand(newRun(out, errOut))
	root.AddCommand(newRm(out, errOut))
	root.AddCommand(newVersion(out))
	return root
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
