package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
)

func newGetCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Show resources",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "networks",
		Aliases: []string{"nets"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			list, err := c.ListNetworks(cmd.Context())
			if err != nil {
				return err
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, map[string]any{"items": list})
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tCHAIN\tRUNTIME\tNODES\tPHASE\tHEIGHT\tAGE")
			for _, n := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\n", n.Metadata.Name, n.Spec.Chain, n.Spec.Runtime, len(n.Spec.Nodes()), dash(n.Status.Phase), n.Status.Height, age(n.Metadata.CreationTimestamp))
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use:     "network NAME",
		Aliases: []string{"net"},
		Short:   "Show one network and its nodes",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			n, err := c.GetNetwork(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, n)
			}
			if err := printNetworkTable(cmd, n); err != nil {
				return err
			}
			return printRecentEvents(cmd, c, n.Metadata.Name, 10)
		},
	}, newBlocksCmd(g), newTxsCmd(g), newPackagesCmd(g), newContractsCmd(g), newGetClustersCmd(g))
	return cmd
}

func printRecentEvents(cmd *cobra.Command, c *client.Client, name string, last int) error {
	var all []apis.Event
	var after int64
	for {
		list, err := c.NetworkEvents(cmd.Context(), name, after)
		if err != nil {
			return err
		}
		all = append(all, list.Items...)
		if len(list.Items) == 0 || list.Next == after {
			break
		}
		after = list.Next
	}
	if len(all) > last {
		all = all[len(all)-last:]
	}
	out := cmd.OutOrStdout()
	fmt.Fprintln(out, "\nEvents:")
	tw := newTable(out)
	fmt.Fprintln(tw, "  AGE\tTYPE\tREASON\tNODE\tMESSAGE")
	for _, e := range all {
		t := e.Time
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", age(&t), e.Type, e.Reason, dash(e.Node), e.Message)
	}
	return tw.Flush()
}

func printNetworkTable(cmd *cobra.Command, n *apis.Network) error {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Name:     %s\nChain:    %s (%s)\nRuntime:  %s\nPhase:    %s\n", n.Metadata.Name, n.Spec.Chain, dash(n.Status.ChainID), n.Spec.Runtime, dash(n.Status.Phase))
	if n.Status.Message != "" {
		fmt.Fprintf(out, "Message:  %s\n", n.Status.Message)
	}
	fmt.Fprintf(out, "Height:   %d\n\n", n.Status.Height)
	tw := newTable(out)
	fmt.Fprintln(tw, "NODE\tROLE\tORG\tPHASE\tHEIGHT\tPEERS\tRESTARTS\tPID\tRPC\tP2P")
	for _, s := range n.Status.Nodes {
		pid := "-"
		if s.PID > 0 {
			pid = strconv.Itoa(s.PID)
		}
		rpc := s.Endpoints["rpc"]
		if rpc == "" {
			rpc = s.Endpoints["listen"] // a Fabric node's gRPC service
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", s.Name, s.Role, dash(s.Organization), s.Phase, s.Height, s.Peers, s.Restarts, pid, dash(rpc), dash(s.Endpoints["p2p"]))
	}
	return tw.Flush()
}
