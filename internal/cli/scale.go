package cli

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
)

func newScaleCmd(g *globals) *cobra.Command {
	var (
		org                   string
		validators, fullNodes int
		peers, orderers       int
	)
	cmd := &cobra.Command{
		Use:   "scale NETWORK",
		Short: "Change how many validators and full nodes a running network has",
		Long: `Change how many validators and full nodes a running network has. Nodes are
added and removed at the end of the list; a new validator joins consensus by
the chain's own rules (on Ethereum, a Clique vote of the sealers), and a
removed one is voted out before its node stops. On a Fabric network, give
--org and --peers: the organization runs that many peers, an organization the
network does not have joins the channel every organization shares, and one with
--peers 0 leaves the network and its channels (see "channel set" for the
others); or
give --orderers: the Raft ordering service runs that many orderers (1, 3 or 5),
taken in or out of the channel's consenters one at a time. Watch the change
with "get network NETWORK" or "wait".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.ScaleRequest{Organization: org}
			if cmd.Flags().Changed("validators") {
				req.Validators = &validators
			}
			if cmd.Flags().Changed("full-nodes") {
				req.FullNodes = &fullNodes
			}
			if cmd.Flags().Changed("peers") {
				req.Peers = &peers
			}
			if cmd.Flags().Changed("orderers") {
				req.Orderers = &orderers
			}
			if req.Validators == nil && req.FullNodes == nil && req.Peers == nil && req.Orderers == nil {
				return fmt.Errorf("give --validators, --full-nodes or both, or --peers or --orderers on a Fabric network")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			body, _ := json.Marshal(req)
			var out apis.Network
			if err := c.Do(cmd.Context(), http.MethodPut, networkPath(args[0], "/scale"), body, "application/json", &out); err != nil {
				return err
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "network/%s scaling to %d nodes\n", out.Metadata.Name, len(out.Spec.Nodes()))
			return nil
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "the organization whose nodes change, on a network of organizations")
	cmd.Flags().IntVar(&validators, "validators", 0, "the number of validators (sealers, on Ethereum)")
	cmd.Flags().IntVar(&fullNodes, "full-nodes", 0, "the number of full nodes")
	cmd.Flags().IntVar(&peers, "peers", 0, "the number of peers of --org on a Fabric network (a new organization is added, 0 takes it out)")
	cmd.Flags().IntVar(&orderers, "orderers", 0, "the number of Raft orderers of a Fabric network")
	return cmd
}
