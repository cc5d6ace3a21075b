package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/api"
)

func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Register, check and forget Kubernetes clusters",
	}
	var kubeconfig, kctx, description string
	add := &cobra.Command{
		Use:   "add NAME --kubeconfig FILE",
		Short: "Register a Kubernetes cluster; its kubeconfig is kept sealed and never shown again",
		Long: `Register a Kubernetes cluster by kubeconfig. The kubeconfig must carry its
credentials inline (a token or a client certificate): the server runs no
login programs and reads none of its own files for a cluster. The cluster is
checked at once, for its version and for every permission the Kubernetes
runtime needs; "get clusters" shows what it found.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kubeconfig == "" {
				return fmt.Errorf("give --kubeconfig FILE (- for standard input)")
			}
			var kc []byte
			var err error
			if kubeconfig == "-" {
				kc, err = io.ReadAll(cmd.InOrStdin())
			} else {
				kc, err = os.ReadFile(kubeconfig)
			}
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			body, _ := json.Marshal(api.ClusterRequest{Name: args[0], Kubeconfig: string(kc), Context: kctx, Description: description})
			var out api.Cluster
			if err := c.Do(cmd.Context(), http.MethodPost, "/api/v1/clusters", body, "application/json", &out); err != nil {
				return err
			}
			return printClusters(cmd, g, out)
		},
	}
	add.Flags().StringVar(&kubeconfig, "kubeconfig", "", "the cluster's kubeconfig file (- for standard input)")
	add.Flags().StringVar(&kctx, "context", "", "the kubeconfig context to use (default: its current context)")
	add.Flags().StringVar(&description, "description", "", "what the cluster is for")
	check := &cobra.Command{
		Use:   "check NAME",
		Short: "Check a registered cluster again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var out api.Cluster
			if err := c.Do(cmd.Context(), http.MethodPost, "/api/v1/clusters/"+url.PathEscape(args[0])+"/check", nil, "", &out); err != nil {
				return err
			}
			return printClusters(cmd, g, out)
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Forget a registered cluster and its kubeconfig",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), http.MethodDelete, "/api/v1/clusters/"+url.PathEscape(args[0]), nil, "", nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cluster/%s removed\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, check, remove)
	return cmd
}

func newGetClustersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "clusters",
		Short: "List the registered Kubernetes clusters and their status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var list struct {
				Items []api.Cluster `json:"items"`
			}
			if err := c.Do(cmd.Context(), http.MethodGet, "/api/v1/clusters", nil, "", &list); err != nil {
				return err
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, list)
			}
			return printClusters(cmd, g, list.Items...)
		},
	}
}

func printClusters(cmd *cobra.Command, g *globals, cs ...api.Cluster) error {
	if g.output != "table" && len(cs) == 1 {
		return printObject(cmd.OutOrStdout(), g.output, cs[0])
	}
	tw := newTable(cmd.OutOrStdout())
	fmt.Fprintln(tw, "NAME\tSERVER\tCONTEXT\tPHASE\tVERSION\tMISSING\tMESSAGE")
	for _, c := range cs {
		missing := "-"
		if len(c.Status.Missing) > 0 {
			missing = fmt.Sprintf("%d: %s", len(c.Status.Missing), strings.Join(c.Status.Missing[:min(3, len(c.Status.Missing))], ", "))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Server, c.Context, dash(c.Status.Phase), dash(c.Status.Version), missing, dash(c.Status.Message))
	}
	return tw.Flush()
}
