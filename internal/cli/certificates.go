package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newCertificatesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certificates",
		Short: "See and renew the certificates of a Fabric network's nodes and organisations",
	}
	list := &cobra.Command{
		Use:   "list NETWORK",
		Short: "List the certificates of a Fabric network, with when each expires and is renewed",
		Long: `List every node's enrolment and TLS certificate and each organisation's admin
and built-in application identity's, with when it expires and when the
platform renews it: two thirds into its validity, or when asked to by
"certificates renew". Identities enrolled through the API are listed by
"identities list" and renewed by their holders ("identities renew").`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			out, err := c.Certificates(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, out)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "OWNER\tORGANIZATION\tKIND\tSERIAL\tEXPIRES\tRENEWED BY\tDUE")
			for _, c := range out.Items {
				due := c.Due
				if due == "" {
					due = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Owner, c.Organization, c.Kind, c.Serial, c.NotAfter.Format(time.DateOnly), c.RenewAt.Format(time.DateOnly), due)
			}
			return tw.Flush()
		},
	}
	var at string
	renew := &cobra.Command{
		Use:   "renew NETWORK [--at TIME]",
		Short: "Renew the certificates of a Fabric network's nodes and organisations now, or at a time",
		Long: `Renew every certificate of a Fabric network's nodes, admins and built-in
application identities issued before now, or before --at (RFC 3339) once
that time has come. Each is renewed by its organisation's CA for the key it
has. The nodes restart with theirs one at a time, while every node runs; a
Raft orderer's new TLS certificate first goes into the consenters of each
channel by a config update. A BFT service's orderers are not renewed. Watch it with "get network NETWORK" or "certificates list".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var when time.Time
			if at != "" {
				var err error
				if when, err = time.Parse(time.RFC3339, at); err != nil {
					return fmt.Errorf("--at %q: not an RFC 3339 time such as 2027-01-31T02:00:00Z", at)
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			n, err := c.RenewCertificates(cmd.Context(), args[0], when)
			if err != nil {
				return err
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "network/%s renews the certificates issued before %s\n", n.Metadata.Name, n.Spec.Fabric.RenewCertificates.Format(time.RFC3339))
			return nil
		},
	}
	renew.Flags().StringVar(&at, "at", "", "renew the certificates issued before this RFC 3339 time, once it has come (default now)")
	cmd.AddCommand(list, renew)
	return cmd
}
