package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chaindock/chaindock/internal/api"
)

func newIdentitiesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "identities",
		Aliases: []string{"identity"},
		Short:   "Enrol, list and remove the application identities of a Fabric network",
	}
	var csrFile, outDir string
	enroll := &cobra.Command{
		Use:   "enroll NETWORK ORGANIZATION NAME",
		Short: "Enrol an application identity (node OU client) of a peer organisation",
		Long: `Enrol an application identity of a peer organisation, issued by the
organisation's CA. With --csr, the certificate is for the key of your
certificate signing request (PEM, ECDSA P-256, subject CN NAME): the key
stays with you, and you sign with Fabric's own SDK. Without it the
platform makes the key, shows it once, and keeps it sealed, so that
transactions sent through its gateway may name the identity
("identity": NAME). --out DIR writes cert.pem, key.pem (if any) and
tlsca.pem there; without it the key is printed.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.IdentityRequest{Organization: args[1], Name: args[2]}
			if csrFile != "" {
				b, err := os.ReadFile(csrFile)
				if err != nil {
					return err
				}
				req.CSR = string(b)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			// The key is shown once: the files must be writable before
			// the platform makes it.
			if outDir != "" {
				if err := checkIdentityDir(outDir); err != nil {
					return err
				}
			}
			id, err := c.EnrollIdentity(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if outDir != "" {
				if err := writeIdentity(outDir, id); err != nil {
					fmt.Fprint(cmd.OutOrStdout(), id.PrivateKey)
					return fmt.Errorf("identity %s/%s is enrolled, but: %w (its key, shown once, is printed above)", id.Organization, id.Name, err)
				}
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, id)
			}
			if err := printIdentities(cmd, *id); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, p := range id.Peers {
				fmt.Fprintf(w, "peer %s: %s (TLS host name %s)\n", p.Name, p.Endpoint, p.TLSHostName)
			}
			switch {
			case outDir != "":
				fmt.Fprintf(w, "certificate, key and TLS CA written to %s\n", outDir)
			case id.PrivateKey != "":
				fmt.Fprintf(w, "%s%sthe key is not shown again\n", id.Certificate, id.PrivateKey)
			default:
				fmt.Fprint(w, id.Certificate)
			}
			return nil
		},
	}
	enroll.Flags().StringVar(&csrFile, "csr", "", "PEM certificate signing request whose key the certificate is for")
	enroll.Flags().StringVar(&outDir, "out", "", "directory to write cert.pem, key.pem and tlsca.pem to")

	var org string
	list := &cobra.Command{
		Use:   "list NETWORK",
		Short: "List the enrolled identities of the organisations you may sign as",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ids, err := c.ListIdentities(cmd.Context(), args[0], org)
			if err != nil {
				return err
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, api.IdentityList{Items: ids})
			}
			return printIdentities(cmd, ids...)
		},
	}
	list.Flags().StringVar(&org, "organization", "", "only this organisation's")

	var revoke bool
	remove := &cobra.Command{
		Use:     "delete NETWORK ORGANIZATION NAME",
		Aliases: []string{"remove"},
		Short:   "Revoke an enrolled identity on the channel and remove it and its key from the platform",
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.DeleteIdentity(cmd.Context(), args[0], args[1], args[2], revoke); err != nil {
				return err
			}
			how := "revoked on the channel and removed"
			if !revoke {
				how = "removed (its certificate stays valid on the channel)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "identity %s/%s of network %s %s\n", args[1], args[2], args[0], how)
			return nil
		},
	}
	remove.Flags().BoolVar(&revoke, "revoke", true, "revoke the certificate on the channel first (--revoke=false only removes it from the platform)")
	var renewCSR, renewOut string
	var revokePrevious bool
	renew := &cobra.Command{
		Use:   "renew NETWORK ORGANIZATION NAME",
		Short: "Issue an enrolled identity a new certificate before its certificate expires",
		Long: `Issue an enrolled identity a new certificate from its organisation's CA.
An identity whose key the platform holds is renewed for that key; one
enrolled from a certificate signing request needs a new one (--csr), whose
key may be new. With --revoke-previous the certificate it replaces is first
revoked on the organisation's channels; without it, that one stays valid
until it expires. --out DIR replaces DIR/cert.pem.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.RenewRequest{RevokePrevious: revokePrevious}
			if renewCSR != "" {
				b, err := os.ReadFile(renewCSR)
				if err != nil {
					return err
				}
				req.CSR = string(b)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			id, err := c.RenewIdentity(cmd.Context(), args[0], args[1], args[2], req)
			if err != nil {
				return err
			}
			if renewOut != "" {
				if err := replaceFile(filepath.Join(renewOut, "cert.pem"), id.Certificate, 0o644); err != nil {
					fmt.Fprint(cmd.OutOrStdout(), id.Certificate)
					return fmt.Errorf("identity %s/%s is renewed, but: %w (its certificate is printed above)", id.Organization, id.Name, err)
				}
			}
			if g.output != "table" {
				return printObject(cmd.OutOrStdout(), g.output, id)
			}
			if err := printIdentities(cmd, *id); err != nil {
				return err
			}
			if renewOut != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "certificate written to %s\n", filepath.Join(renewOut, "cert.pem"))
				return nil
			}
			fmt.Fprint(cmd.OutOrStdout(), id.Certificate)
			return nil
		},
	}
	renew.Flags().StringVar(&renewCSR, "csr", "", "new PEM certificate signing request, for an identity enrolled from one")
	renew.Flags().BoolVar(&revokePrevious, "revoke-previous", false, "revoke the certificate being replaced on the channels first")
	renew.Flags().StringVar(&renewOut, "out", "", "directory whose cert.pem the new certificate replaces")
	cmd.AddCommand(enroll, list, renew, remove)
	return cmd
}

// identityFile is a file an enrolment is written to.
type identityFile struct {
	name string
	mode os.FileMode
	data func(*api.Identity) string
}

// identityFiles are an enrolment's certificate, key and TLS CAs.
var identityFiles = []identityFile{
	{"cert.pem", 0o644, func(id *api.Identity) string { return id.Certificate }},
	{"key.pem", 0o600, func(id *api.Identity) string { return id.PrivateKey }},
	{"tlsca.pem", 0o644, func(id *api.Identity) string { return strings.Join(id.TLSCACertificates, "") }},
}

// checkIdentityDir makes dir and refuses it when it has an identity's
// files already.
func checkIdentityDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range identityFiles {
		if _, err := os.Stat(filepath.Join(dir, f.name)); err == nil {
			return fmt.Errorf("%s has %s already: give another --out", dir, f.name)
		}
	}
	return nil
}

// writeIdentity writes an enrolment's files into dir, which
// checkIdentityDir made, refusing to overwrite a file.
func writeIdentity(dir string, id *api.Identity) error {
	var errs []error
	for _, f := range identityFiles {
		data := f.data(id)
		if data == "" {
			continue
		}
		fh, err := os.OpenFile(filepath.Join(dir, f.name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, err = fh.WriteString(data)
		errs = append(errs, err, fh.Close())
	}
	return errors.Join(errs...)
}

// replaceFile writes data to path through a file beside it, so that path
// has the old content or the new, never part of it.
func replaceFile(path, data string, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(data)
	if err = errors.Join(err, tmp.Chmod(mode), tmp.Close()); err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}

func printIdentities(cmd *cobra.Command, ids ...api.Identity) error {
	tw := newTable(cmd.OutOrStdout())
	fmt.Fprintln(tw, "ORGANIZATION\tMSP ID\tNAME\tKEY HELD\tPEERS\tEXPIRES\tAGE")
	for _, id := range ids {
		held := "no (CSR)"
		if id.KeyHeld {
			held = "yes"
		}
		created := id.CreatedAt
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", id.Organization, id.MSPID, id.Name, held, len(id.Peers), id.NotAfter.Format(time.DateOnly), age(&created))
	}
	return tw.Flush()
}
