package cli

import (
	"fmt"
	"io"

	"github.com/berth-project/berth/internal/cri"
	"github.com/spf13/cobra"
)

func newVersion(out io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print berth's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(out, "berth %s\n", cri.Version)
			return err
		},
	}
}
