package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
)

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

func newApplyCmd(g *globals) *cobra.Command {
	var (
		file    string
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create the networks a YAML or JSON file describes",
		Long: `Create the networks a file describes (several YAML documents separated by
"---" are allowed; "-f -" reads standard input). A network that already exists
with the same spec is left unchanged. With --wait, every deploy step is shown
as it happens, and the command ends when the network is Running (exit 0) or
has failed (exit 1, with the reason).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("-f FILE is required")
			}
			data, err := readInput(cmd, file)
			if err != nil {
				return err
			}
			docs, err := splitDocs(data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			var names []string
			for _, doc := range docs {
				n, err := c.CreateNetwork(ctx, doc.data)
				switch {
				case err == nil:
					fmt.Fprintf(out, "network/%s created\n", n.Metadata.Name)
				case client.IsAlreadyExists(err) && doc.name != "":
					same, cerr := sameSpec(cmd, c, doc)
					if cerr != nil {
						return cerr
					}
					if !same {
						return fmt.Errorf("network %s already exists with a different spec; changing the spec of an existing network is not supported yet: delete it first", doc.name)
					}
					fmt.Fprintf(out, "network/%s unchanged\n", doc.name)
				default:
					return fmt.Errorf("%s: %w", file, err)
				}
				names = append(names, doc.name)
			}
			if !wait {
				return nil
			}
			for _, name := range names {
				if err := waitRunning(ctx, c, name, timeout, out); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "file to apply (- for standard input)")
	cmd.Flags().BoolVar(&wait, "wait", false, "show deploy steps and wait until each network is Running or has failed")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}

type document struct {
	name string
	data []byte
	spec *apis.Network
}

// splitDocs splits a multi-document file and refuses two documents with
// one name before anything is sent.
func splitDocs(data []byte) ([]document, error) {
	var docs []document
	seen := map[string]int{}
	for i, part := range docSeparator.Split(string(data), -1) {
		if len(bytes.TrimSpace([]byte(part))) == 0 {
			continue
		}
		d := document{data: []byte(part)}
		// The server validates; the name is read here only to find
		// duplicates and for --wait.
		if n, err := apis.DecodeNetwork(d.data); err == nil {
			d.name, d.spec = n.Metadata.Name, n
			if j, dup := seen[d.name]; dup {
				return nil, fmt.Errorf("documents %d and %d both define network %q", j+1, i+1, d.name)
			}
			seen[d.name] = i
		}
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no document found")
	}
	return docs, nil
}

func sameSpec(cmd *cobra.Command, c *client.Client, doc document) (bool, error) {
	existing, err := c.GetNetwork(cmd.Context(), doc.name)
	if err != nil {
		return false, err
	}
	want := *doc.spec
	apis.SetDefaults(&want)
	a, _ := json.Marshal(want.Spec)
	b, _ := json.Marshal(existing.Spec)
	return bytes.Equal(a, b), nil
}
