package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/api"
)

// Explorer and gateway commands: blocks, transactions, search, submit and
// query, over the REST API.

func networkPath(network, rest string) string {
	return "/api/v1/networks/" + url.PathEscape(network) + rest
}

// channelFlag adds --channel, which reads a channel of
// spec.fabric.channels rather than the one every organisation shares.
func channelFlag(cmd *cobra.Command, ch *string) {
	cmd.Flags().StringVar(ch, "channel", "", "a channel of spec.fabric.channels (Fabric); unset, the channel every organisation shares")
}

// withChannel sets channel in q when one is given.
func withChannel(q url.Values, ch string) url.Values {
	if ch != "" {
		q.Set("channel", ch)
	}
	return q
}

func newBlocksCmd(g *globals) *cobra.Command {
	var before int64
	var limit int
	var channel string
	cmd := &cobra.Command{
		Use:   "blocks NETWORK",
		Short: "List a network's blocks, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if before > 0 {
				q.Set("before", strconv.FormatInt(before, 10))
			}
			var list api.BlockList
			if err := c.Do(cmd.Context(), http.MethodGet, networkPath(args[0], "/blocks?"+withChannel(q, channel).Encode()), nil, "", &list); err != nil {
				return err
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, list)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "HEIGHT\tHASH\tTXS\tTIME\tPROPOSER")
			for _, b := range list.Items {
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", b.Height, b.Hash, b.NumTxs, b.Time.Local().Format("2006-01-02 15:04:05.000"), b.Proposer)
			}
			if list.Next != "" {
				fmt.Fprintf(tw, "(more: --before %s)\n", list.Next)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().Int64Var(&before, "before", 0, "list blocks below this height")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many blocks")
	channelFlag(cmd, &channel)
	return cmd
}

func newTxsCmd(g *globals) *cobra.Command {
	var before string
	var height int64
	var limit int
	var channel string
	cmd := &cobra.Command{
		Use:     "transactions NETWORK",
		Aliases: []string{"txs"},
		Short:   "List a network's transactions, newest first",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if before != "" {
				q.Set("before", before)
			}
			if height > 0 {
				q.Set("height", strconv.FormatInt(height, 10))
			}
			var list api.TxList
			if err := c.Do(cmd.Context(), http.MethodGet, networkPath(args[0], "/transactions?"+withChannel(q, channel).Encode()), nil, "", &list); err != nil {
				return err
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, list)
			}
			return printTxTable(cmd.OutOrStdout(), list.Items, list.Next)
		},
	}
	cmd.Flags().StringVar(&before, "before", "", "list transactions older than HEIGHT.INDEX")
	cmd.Flags().Int64Var(&height, "height", 0, "only the transactions of this block")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many transactions")
	channelFlag(cmd, &channel)
	return cmd
}

func printTxTable(w io.Writer, txs []api.Tx, next string) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "HASH\tHEIGHT\tINDEX\tTYPE\tCODE\tTIME")
	for _, t := range txs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%s\n", t.Hash, t.Height, t.Index, dash(t.Type), t.Code, t.Time.Local().Format("2006-01-02 15:04:05.000"))
	}
	if next != "" {
		fmt.Fprintf(tw, "(more: --before %s)\n", next)
	}
	return tw.Flush()
}

func newSearchCmd(g *globals) *cobra.Command {
	var channel string
	cmd := &cobra.Command{
		Use:   "search NETWORK HEIGHT|BLOCK-HASH|TX-HASH",
		Short: "Find a block or a transaction",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var res api.SearchResult
			q := withChannel(url.Values{"q": {args[1]}}, channel)
			if err := c.Do(cmd.Context(), http.MethodGet, networkPath(args[0], "/search?"+q.Encode()), nil, "", &res); err != nil {
				return err
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, res)
			}
			if res.Tx != nil {
				return printTxTable(cmd.OutOrStdout(), []api.Tx{*res.Tx}, "")
			}
			b := res.Block
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "HEIGHT\tHASH\tTXS\tTIME\tAPP HASH")
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", b.Height, b.Hash, b.NumTxs, b.Time.Local().Format("2006-01-02 15:04:05.000"), b.AppHash)
			return tw.Flush()
		},
	}
	channelFlag(cmd, &channel)
	return cmd
}

func newSubmitCmd(g *globals) *cobra.Command {
	var file string
	var noWait bool
	cmd := &cobra.Command{
		Use:   "submit NETWORK -f TX-FILE",
		Short: "Submit a signed transaction through the gateway and wait for its block",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			tx, err := readInput(cmd, file)
			if err != nil {
				return err
			}
			wait := "commit"
			if noWait {
				wait = "none"
			}
			var rc map[string]any
			if err := c.Do(cmd.Context(), http.MethodPost, networkPath(args[0], "/transactions?wait="+wait), tx, "application/json", &rc); err != nil {
				return err
			}
			return printObject(cmd.OutOrStdout(), outputOr(g.output, "yaml"), rc)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the signed transaction (- for standard input)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once a node admitted the transaction")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func newQueryCmd(g *globals) *cobra.Command {
	var transientFile string
	cmd := &cobra.Command{
		Use:   "query NETWORK PATH [DATA]",
		Short: "Query a network's application (for example: query mynet /account ADDRESS)",
		Long: `Query a network's application (for example: query mynet /account ADDRESS).
On Fabric, PATH is /CHAINCODE/FUNCTION (or /CHANNEL/CHAINCODE/FUNCTION) and
DATA its arguments as a JSON array of strings. --transient FILE (- for
standard input) gives the chaincode's transient map, a JSON object of keys
to base64 strings or {"text": STRING}: it goes in the request's body, never
in a URL.`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var res api.QueryAnswer
			if transientFile != "" {
				body, err := transientQuery(cmd, transientFile, args)
				if err != nil {
					return err
				}
				if err := c.Do(cmd.Context(), http.MethodPost, networkPath(args[0], "/query"), body, "application/json", &res); err != nil {
					return err
				}
				return printObject(cmd.OutOrStdout(), outputOr(g.output, "yaml"), res)
			}
			q := url.Values{"path": {args[1]}}
			if len(args) == 3 {
				q.Set("data", args[2])
			}
			if err := c.Do(cmd.Context(), http.MethodGet, networkPath(args[0], "/query?"+q.Encode()), nil, "", &res); err != nil {
				return err
			}
			return printObject(cmd.OutOrStdout(), outputOr(g.output, "yaml"), res)
		},
	}
	cmd.Flags().StringVar(&transientFile, "transient", "", "file of the chaincode's transient map (Fabric; - for standard input)")
	return cmd
}

// transientQuery is the body of POST .../query for args (NETWORK PATH
// [DATA], DATA a JSON array of strings) with the transient map in file.
func transientQuery(cmd *cobra.Command, file string, args []string) ([]byte, error) {
	var raw []byte
	var err error
	if file == "-" {
		raw, err = io.ReadAll(cmd.InOrStdin())
	} else {
		raw, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, err
	}
	q := api.QueryRequest{Path: args[1], Transient: json.RawMessage(raw)}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("--transient %s: not JSON; want an object of keys to base64 strings or {\"text\": STRING}", file)
	}
	if len(args) == 3 {
		if err := json.Unmarshal([]byte(args[2]), &q.Args); err != nil {
			return nil, fmt.Errorf("DATA %q: with --transient, a JSON array of strings: %w", args[2], err)
		}
	}
	return json.Marshal(q)
}

// outputOr is the output format, with def for the table that a command
// has none of.
func outputOr(output, def string) string {
	if output == "table" {
		return def
	}
	return output
}
