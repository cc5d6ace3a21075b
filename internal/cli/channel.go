package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
)

func newChannelCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "channel",
		Short: "Change the channels of a running Fabric network",
	}
	cmd.AddCommand(newChannelAddCmd(g), newChannelSetCmd(g))
	return cmd
}

func newChannelAddCmd(g *globals) *cobra.Command {
	var orgs []string
	cmd := &cobra.Command{
		Use:   "add NETWORK CHANNEL --orgs ORG[,ORG...]",
		Short: "Add a channel of some organizations to a running Fabric network",
		Long: `Add a channel to a running Fabric network's spec.fabric.channels, with the
organizations given as its members (each with a running peer). Its genesis
block is made as at creation, every orderer joins it, the members' peers join
it and set their anchor peers there. Deploy contracts on it once the network
is Running again ("contract deploy ... --channel CHANNEL"). Watch it with
"get network NETWORK" or "wait".`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(orgs) == 0 {
				return fmt.Errorf("give --orgs: the channel's member organizations, at least one")
			}
			body, _ := json.Marshal(apis.FabricChannel{Name: args[1], Organizations: orgs})
			return sendChannel(cmd, g, http.MethodPost, networkPath(args[0], "/channels"), body, "channel "+args[1]+" added: members "+strings.Join(orgs, ", "))
		},
	}
	cmd.Flags().StringSliceVar(&orgs, "orgs", nil, "the channel's member organizations, comma-separated")
	return cmd
}

func newChannelSetCmd(g *globals) *cobra.Command {
	var orgs []string
	cmd := &cobra.Command{
		Use:   "set NETWORK CHANNEL --orgs ORG[,ORG...]",
		Short: "Set the member organizations of a channel of spec.fabric.channels",
		Long: `Set the member organizations of one of a running Fabric network's channels
of spec.fabric.channels. An organization added is made a member by a config
update its current members' admins sign; its peers join the channel, its
anchor peers are set there, and the chaincode committed on the channel is
installed on its peers and approved by it. An organization taken out is
removed from the channel's configuration, and its calls on the channel are
refused. The channel every organization shares changes with "scale" instead.
Watch the change with "get network NETWORK" or "wait".`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(orgs) == 0 {
				return fmt.Errorf("give --orgs: the channel's member organizations, at least one")
			}
			body, _ := json.Marshal(api.ChannelMembersRequest{Organizations: orgs})
			return sendChannel(cmd, g, http.MethodPut, networkPath(args[0], "/channels/"+url.PathEscape(args[1])), body, "channel "+args[1]+": members "+strings.Join(orgs, ", "))
		},
	}
	cmd.Flags().StringSliceVar(&orgs, "orgs", nil, "the channel's member organizations, comma-separated")
	return cmd
}

// sendChannel sends a channel request and shows the network it answers
// with, or says done in the table form.
func sendChannel(cmd *cobra.Command, g *globals, method, path string, body []byte, done string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	var out apis.Network
	if err := c.Do(cmd.Context(), method, path, body, "application/json", &out); err != nil {
		return err
	}
	if g.output != "table" {
		return printObject(cmd.OutOrStdout(), g.output, out)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "network/%s %s\n", out.Metadata.Name, done)
	return nil
}
