package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
)

// Contract store and contract lifecycle commands.

func packagePath(ref apis.PackageRef) string {
	return "/api/v1/packages/" + url.PathEscape(ref.Owner) + "/" + url.PathEscape(ref.Name) + "/" + url.PathEscape(ref.Version)
}

func newPackagesCmd(g *globals) *cobra.Command {
	var chainName, owner string
	cmd := &cobra.Command{
		Use:     "packages",
		Aliases: []string{"pkgs"},
		Short:   "List the contract store: templates and your organizations' packages",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if chainName != "" {
				q.Set("chain", chainName)
			}
			if owner != "" {
				q.Set("owner", owner)
			}
			var list api.PackageList
			if err := c.Do(cmd.Context(), http.MethodGet, "/api/v1/packages?"+q.Encode(), nil, "", &list); err != nil {
				return err
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, list)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "PACKAGE\tCHAIN\tKIND\tCHECKSUM\tDESCRIPTION")
			for _, p := range list.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.19s…\t%s\n", p.Ref(), p.Chain, p.Kind, p.Checksum, dash(p.Description))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&chainName, "chain", "", "only packages for this chain")
	cmd.Flags().StringVar(&owner, "owner", "", "only this organization's packages (builtin: the templates)")
	return cmd
}

func newContractsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "contracts NETWORK",
		Short: "List a network's contracts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var list api.ContractList
			if err := c.Do(cmd.Context(), http.MethodGet, networkPath(args[0], "/contracts"), nil, "", &list); err != nil {
				return err
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, list)
			}
			return printContracts(cmd.OutOrStdout(), list.Items)
		},
	}
}

func printContracts(w io.Writer, items []api.Contract) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tREVISION\tACTION\tSTATE\tPACKAGE\tREF\tHEIGHT\tACTOR\tTIME")
	for _, c := range items {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.Name, c.Revision, c.Action, c.State, c.Package, c.Ref, c.Height, c.Actor,
			c.Time.Local().Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

func newPackageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "package", Short: "Upload, download and delete packages of the contract store"}
	var (
		file                                   string
		dir, owner, name, version, chain, kind string
		description                            string
	)
	push := &cobra.Command{
		Use:   "push (-f PACKAGE.yaml | --dir DIR --name NAME --version VERSION --chain CHAIN --kind KIND)",
		Short: "Upload a package version, from a package document or from a directory's files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var body []byte
			switch {
			case file != "" && dir != "":
				return errors.New("give -f or --dir, not both")
			case file != "":
				b, err := readInput(cmd, file)
				if err != nil {
					return err
				}
				body = b
			case dir != "":
				p := apis.Package{Owner: owner, Name: name, Version: version, Chain: chain, Kind: kind, Description: description}
				files, err := readPackageDir(dir)
				if err != nil {
					return err
				}
				p.Files = files
				if body, err = json.Marshal(p); err != nil {
					return err
				}
			default:
				return errors.New("give -f PACKAGE.yaml or --dir DIR")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var p apis.Package
			if err := c.Do(cmd.Context(), http.MethodPost, "/api/v1/packages", body, "application/yaml", &p); err != nil {
				return err
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, p)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "package/%s pushed (%s)\n", p.Ref(), p.Checksum)
			return nil
		},
	}
	push.Flags().StringVarP(&file, "filename", "f", "", "package document (YAML or JSON; - for stdin)")
	push.Flags().StringVar(&dir, "dir", "", "directory whose files make the package")
	push.Flags().StringVar(&owner, "owner", "", "owning organization (default: your only one)")
	push.Flags().StringVar(&name, "name", "", "package name")
	push.Flags().StringVar(&version, "version", "", "semantic version, e.g. 1.0.0")
	push.Flags().StringVar(&chain, "chain", "", "chain the package is for")
	push.Flags().StringVar(&kind, "kind", "", "package kind, e.g. abci-module")
	push.Flags().StringVar(&description, "description", "", "what the package does")

	var into string
	pull := &cobra.Command{
		Use:   "pull OWNER/NAME@VERSION",
		Short: "Download a package; with --dir, write its files there",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := apis.ParsePackageRef(args[0])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var p apis.Package
			if err := c.Do(cmd.Context(), http.MethodGet, packagePath(ref), nil, "", &p); err != nil {
				return err
			}
			if p.Digest() != p.Checksum {
				return fmt.Errorf("package %s: the content's checksum is %s, not %s as stored", ref, p.Digest(), p.Checksum)
			}
			if into == "" {
				format := g.output
				if format == "table" {
					format = "yaml"
				}
				return printObject(cmd.OutOrStdout(), format, p)
			}
			for _, f := range p.Files {
				dst := filepath.Join(into, filepath.FromSlash(f.Path))
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(dst, f.Content(), 0o644); err != nil { //nolint:gosec // a package's files are public, as its source is
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "package/%s: %d files written to %s (%s verified)\n", p.Ref(), len(p.Files), into, p.Checksum)
			return nil
		},
	}
	pull.Flags().StringVar(&into, "dir", "", "write the files into this directory")

	del := &cobra.Command{
		Use:   "delete OWNER/NAME@VERSION",
		Short: "Delete a package version no network runs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := apis.ParsePackageRef(args[0])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), http.MethodDelete, packagePath(ref), nil, "", nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "package/%s deleted\n", ref)
			return nil
		},
	}
	cmd.AddCommand(push, pull, del)
	return cmd
}

// readPackageDir reads every regular file under dir, by slash path, text
// when it is UTF-8 and binary otherwise.
func readPackageDir(dir string) ([]apis.PackageFile, error) {
	var files []apis.PackageFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f := apis.PackageFile{Path: filepath.ToSlash(rel)}
		if utf8.Valid(b) {
			f.Text = string(b)
		} else {
			f.Data = b
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read package directory: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("read package directory %s: no files", dir)
	}
	return files, nil
}

func newContractCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "contract", Short: "Deploy, upgrade and remove contracts on a network"}
	var (
		ctorArgs        []string
		policy          string
		channel         string
		collectionsFile string
		collections     []apis.Collection
	)
	change := func(use, short string, nargs int, method string, body func(args []string) any, path func(args []string) string) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.ExactArgs(nargs),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := g.client()
				if err != nil {
					return err
				}
				var b []byte
				if v := body(args); v != nil {
					if b, err = json.Marshal(v); err != nil {
						return err
					}
				}
				var out api.Contract
				if err := c.Do(cmd.Context(), method, networkPath(args[0], path(args)), b, "application/json", &out); err != nil {
					return err
				}
				if g.output != "table" {
					return printObject(cmd.OutOrStdout(), g.output, out)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "contract/%s %s: revision %d, %s (%s)\n", out.Name, out.State, out.Revision, out.Package, out.Ref)
				return nil
			},
		}
	}
	byName := func(args []string) string { return "/contracts/" + url.PathEscape(args[1]) }
	deploy := change("deploy NETWORK NAME OWNER/PACKAGE@VERSION", "Deploy a package as contract NAME", 3, http.MethodPost,
		func(a []string) any {
			return api.ContractRequest{Name: a[1], Package: a[2], Args: ctorArgs, EndorsementPolicy: policy, Channel: channel, Collections: collections}
		},
		func([]string) string { return "/contracts" })
	upgrade := change("upgrade NETWORK NAME OWNER/PACKAGE@VERSION", "Move contract NAME to another version of its package", 3, http.MethodPut,
		func(a []string) any {
			return api.ContractRequest{Package: a[2], Args: ctorArgs, EndorsementPolicy: policy, Channel: channel, Collections: collections}
		}, byName)
	for _, c := range []*cobra.Command{deploy, upgrade} {
		c.Flags().StringArrayVar(&ctorArgs, "arg", nil, "a constructor argument, in the order the contract declares them (repeat the flag for each)")
		c.Flags().StringVar(&channel, "channel", "", "on Fabric, the channel to deploy on, one of spec.fabric.channels (default: the shared one; an upgrade keeps its contract's)")
		c.Flags().StringVar(&policy, "endorsement-policy", "", "on Fabric, who must endorse: ANY, MAJORITY, ALL or an expression such as \"OR('Org1MSP.peer','Org2MSP.peer')\" (default: the channel's)")
		c.Flags().StringVar(&collectionsFile, "collections", "", "on Fabric, a JSON file of the chaincode's private data collections, "+
			"[{\"name\", \"members\", \"requiredPeerCount\", \"maxPeerCount\", \"blockToLive\", \"memberOnlyRead\", ...}] (default: the package's on a deploy, the contract's on an upgrade)")
		c.PreRunE = func(*cobra.Command, []string) error {
			if collectionsFile == "" {
				return nil
			}
			b, err := os.ReadFile(collectionsFile)
			if err != nil {
				return err
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&collections); err != nil {
				return fmt.Errorf("%s: a JSON array of collections: %w", collectionsFile, err)
			}
			if collections == nil {
				collections = []apis.Collection{}
			}
			return nil
		}
	}
	cmd.AddCommand(
		deploy,
		upgrade,
		change("remove NETWORK NAME", "Remove contract NAME; its history stays", 2, http.MethodDelete,
			func([]string) any { return nil }, byName),
		&cobra.Command{
			Use:   "history NETWORK NAME",
			Short: "Show every revision of a contract",
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := g.client()
				if err != nil {
					return err
				}
				var out api.Contract
				if err := c.Do(cmd.Context(), http.MethodGet, networkPath(args[0], byName(args)), nil, "", &out); err != nil {
					return err
				}
				if g.output != "table" {
					return printObject(cmd.OutOrStdout(), g.output, out)
				}
				items := make([]api.Contract, len(out.History))
				for i, r := range out.History {
					items[i] = api.Contract{ContractRevision: r}
				}
				return printContracts(cmd.OutOrStdout(), items)
			},
		},
	)
	return cmd
}
