package fabric

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
	"github.com/chaindock/chaindock/internal/runtime"
)

// A network's certificates are renewed before they expire: every node's
// enrolment and TLS certificates, and each organisation's admin and
// built-in application identity. A certificate is due once two thirds of
// its validity have passed, or when spec.fabric.renewCertificates asks
// for the certificates issued before a time. Each is renewed by its
// organisation's CA for the key it has, so no key changes hands, and
// consenters and gossip, which know a party by its public key, see the
// same party. The organisations' identities are renewed in the plan at
// once; the nodes one at a time, while every node runs: a Raft orderer's
// new certificates first go into each channel's consenters by a config
// update (a rotation, to etcdraft), then the node's files are rewritten
// and its revision raised, so that the controller restarts it with them.
// A BFT service's orderers are not renewed (see renews).

// renewAfter is the part of a certificate's validity after which it is
// renewed: a yearly certificate at eight months, as cert-manager renews
// by default.
const renewAfter = 2.0 / 3

// renewAt is when certificate c is due: renewAfter into its validity.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(time.Duration(float64(c.NotAfter.Sub(c.NotBefore)) * renewAfter))
}

// bftSettle is how long a BFT orderer has run before another one
// restarts with renewed certificates: three of SmartBFT's 10 s leader
// heartbeat timeouts, in which a view change a restart caused is over.
const bftSettle = 30 * time.Second

// certFile is a certificate the plan keeps: in a node's files, or among
// the artifacts of organisation org; ca is the CA that issued it.
type certFile struct {
	path string
	org  string
	kind pki.Kind
}

// nodeCerts are the certificates of a peer or an orderer.
func nodeCerts(org string) []certFile {
	return []certFile{
		{path: dirMSP + "/" + pki.MSPSignCert, org: org, kind: pki.KindMSP},
		{path: dirTLS + "/" + pki.TLSCert, org: org, kind: pki.KindTLS},
	}
}

// orgCerts are the certificates of organisation org's own identities.
func orgCerts(plan *chain.Plan, org string) []certFile {
	var out []certFile
	for _, c := range []certFile{
		{path: orgPath(org, artAdminMSP+"/"+pki.MSPSignCert), org: org, kind: pki.KindMSP},
		{path: orgPath(org, artAdminTLS+"/"+pki.TLSCert), org: org, kind: pki.KindTLS},
		{path: orgPath(org, artAppMSP+"/"+pki.MSPSignCert), org: org, kind: pki.KindMSP},
	} {
		if plan.Artifact(c.path) != nil {
			out = append(out, c)
		}
	}
	return out
}

// renewal is what renewing a network's certificates needs: its
// organisations' CAs, loaded once, the time, and the requested renewal.
type renewal struct {
	// bft: the orderers run SmartBFT, whose orderers the platform does
	// not renew (see renews).
	bft       bool
	plan      *chain.Plan
	now       time.Time
	requested *time.Time
	cas       map[string]*pki.CA // by organisation and kind
}

func newRenewal(spec *apis.NetworkSpec, plan *chain.Plan, now time.Time) *renewal {
	r := &renewal{bft: spec.Fabric.IsBFT(), plan: plan, now: now, cas: map[string]*pki.CA{}}
	if t := spec.Fabric.RenewCertificates; t != nil && !t.After(now) {
		r.requested = t
	}
	return r
}

func (r *renewal) ca(org string, kind pki.Kind) (*pki.CA, error) {
	key := org + "/" + string(kind)
	if ca, ok := r.cas[key]; ok {
		return ca, nil
	}
	dir := artCA
	if kind == pki.KindTLS {
		dir = artTLSCA
	}
	ca, err := loadOrgCA(r.plan, org, dir)
	if err != nil {
		return nil, err
	}
	r.cas[key] = ca
	return ca, nil
}

// due says why certificate data (PEM), issued by ca, is to be renewed
// now, or "" when it is not. A certificate its CA cannot give a later
// end is not due: renewing it would not help, and would be due again at
// once.
func (r *renewal) due(data []byte, ca *pki.CA) (string, error) {
	c, err := pki.ParseCertPEM(data)
	if err != nil {
		return "", err
	}
	if !ca.Cert.NotAfter.After(c.NotAfter) {
		return "", nil
	}
	// Certificates keep whole seconds: one issued in the second asked
	// for counts as issued after it.
	if r.requested != nil && pki.IssuedAt(c).Before(r.requested.Truncate(time.Second)) {
		return "renewal asked for at " + r.requested.UTC().Format(time.RFC3339), nil
	}
	if r.now.After(renewAt(c)) {
		return "it expires at " + c.NotAfter.UTC().Format(time.RFC3339), nil
	}
	return "", nil
}

// renewed is data (PEM) renewed by ca for its key, as PEM.
func (r *renewal) renewed(data []byte, ca *pki.CA) ([]byte, error) {
	c, err := pki.ParseCertPEM(data)
	if err != nil {
		return nil, err
	}
	nc, err := ca.Renew(c, 0, r.now)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: nc.Raw}), nil
}

// dueOf is the first due certificate of files (read by get), and why.
func (r *renewal) dueOf(files []certFile, get func(string) []byte) (certFile, string, error) {
	for _, f := range files {
		data := get(f.path)
		if data == nil {
			return f, "", fmt.Errorf("the plan has no %s", f.path)
		}
		ca, err := r.ca(f.org, f.kind)
		if err != nil {
			return f, "", err
		}
		why, err := r.due(data, ca)
		if err != nil || why != "" {
			return f, why, err
		}
	}
	return certFile{}, "", nil
}

// orgsOf are the organisations of plan: the orderer organisation and
// those with nodes, in plan order.
func orgsOf(spec *apis.NetworkSpec, plan *chain.Plan) []string {
	orgs := []string{spec.Fabric.OrdererOrg()}
	for _, pn := range plan.Nodes {
		if pn.Organization != "" && !slices.Contains(orgs, pn.Organization) {
			orgs = append(orgs, pn.Organization)
		}
	}
	return orgs
}

// renews says whether the platform renews the certificates of planned
// node pn: a peer's or a Raft orderer's, once it is a member. Not a BFT
// orderer's yet: with Fabric 3.1.5 the second orderer renewed was no
// longer reached by the others, whether its consenter update came just
// before its restart or 30 s after it.
func (r *renewal) renews(pn chain.PlannedNode) bool {
	return pn.Role != apis.RoleChaincode && !pn.Joining && (!r.bft || pn.Role != apis.RoleValidator)
}

// nodeDue says why a certificate of node pn is due, "" when none is.
func (r *renewal) nodeDue(pn chain.PlannedNode) (string, error) {
	f, why, err := r.dueOf(nodeCerts(pn.Organization), func(p string) []byte { return nodeFile(pn, p) })
	if err != nil {
		return "", fmt.Errorf("node %s: %s: %w", pn.Name, f.path, err)
	}
	return why, nil
}

// dueNode is the index in plan.Nodes of the first peer or orderer with a
// certificate due, and why; -1 when there is none.
func (r *renewal) dueNode(plan *chain.Plan) (int, string, error) {
	for i, pn := range plan.Nodes {
		if !r.renews(pn) {
			continue
		}
		why, err := r.nodeDue(pn)
		if err != nil {
			return -1, "", err
		}
		if why != "" {
			return i, why, nil
		}
	}
	return -1, "", nil
}

// renewing says which certificates of plan are due: "" when none is.
func renewing(spec *apis.NetworkSpec, plan *chain.Plan, now time.Time) string {
	r := newRenewal(spec, plan, now)
	var parts []string
	for _, org := range orgsOf(spec, plan) {
		if _, why, err := r.dueOf(orgCerts(plan, org), plan.Artifact); err == nil && why != "" {
			parts = append(parts, "the identities of "+org)
		}
	}
	for _, pn := range plan.Nodes {
		if !r.renews(pn) {
			continue
		}
		if why, err := r.nodeDue(pn); err == nil && why != "" {
			parts = append(parts, pn.Name)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "renewing the certificates of " + strings.Join(parts, ", ")
}

// renewCertificates takes a step of renewing the plan's due
// certificates: the organisations' identities all at once, else the
// first node due, while every node runs.
func (d *Driver) renewCertificates(ctx context.Context, n *apis.Network, plan *chain.Plan, now time.Time) (chain.Reconfigured, error) {
	var res chain.Reconfigured
	r := newRenewal(&n.Spec, plan, now)
	next := *plan
	next.Artifacts = slices.Clone(plan.Artifacts)
	var renewed []string
	for _, org := range orgsOf(&n.Spec, plan) {
		for _, f := range orgCerts(plan, org) {
			i := slices.IndexFunc(next.Artifacts, func(a runtime.File) bool { return a.Path == f.path })
			ca, err := r.ca(org, f.kind)
			if err != nil {
				return res, fmt.Errorf("renew certificates: %w", err)
			}
			why, err := r.due(next.Artifacts[i].Data, ca)
			if err != nil {
				return res, fmt.Errorf("renew certificates: %s: %w", f.path, err)
			}
			if why == "" {
				continue
			}
			if next.Artifacts[i].Data, err = r.renewed(next.Artifacts[i].Data, ca); err != nil {
				return res, fmt.Errorf("renew certificates: %s: %w", f.path, err)
			}
			renewed = append(renewed, f.path)
		}
	}
	if len(renewed) > 0 {
		res.Plan = &next
		res.Done = "renewed the certificates " + strings.Join(renewed, ", ")
		return res, nil
	}

	i, why, err := r.dueNode(plan)
	if err != nil || i < 0 {
		return res, err
	}
	pn := plan.Nodes[i]
	res.Pending = fmt.Sprintf("renewing the certificates of %s (%s)", pn.Name, why)
	ctx, cancel := context.WithTimeout(ctx, admitWait)
	defer cancel()
	if waiting := d.unsettled(ctx, n, plan); waiting != "" {
		res.Pending += ": waiting for " + waiting
		return res, nil
	}
	node := pn
	node.Spec.Files = slices.Clone(pn.Spec.Files)
	for _, f := range nodeCerts(pn.Organization) {
		j := slices.IndexFunc(node.Spec.Files, func(a runtime.File) bool { return a.Path == f.path })
		ca, err := r.ca(f.org, f.kind)
		if err != nil {
			return res, err
		}
		if node.Spec.Files[j].Data, err = r.renewed(node.Spec.Files[j].Data, ca); err != nil {
			return res, fmt.Errorf("node %s: %s: %w", pn.Name, f.path, err)
		}
	}
	node.Revision++
	if pn.Role == apis.RoleValidator {
		if err := rotateConsenter(ctx, n, plan, node); err != nil {
			return res, err
		}
	}
	next.Nodes = slices.Clone(plan.Nodes)
	next.Nodes[i] = node
	tlsCert, _ := pki.ParseCertPEM(nodeFile(node, dirTLS+"/"+pki.TLSCert))
	res.Plan, res.Pending = &next, ""
	res.Done = fmt.Sprintf("renewed the certificates of %s (%s); they are valid until %s, and it restarts with them", pn.Name, why, tlsCert.NotAfter.UTC().Format(time.RFC3339))
	return res, nil
}

// rotateConsenter gives every channel orderer node's renewed
// certificates, one config update a channel, signed by its
// organisation's admin, and waits until a member peer of each has it.
func rotateConsenter(ctx context.Context, n *apis.Network, plan *chain.Plan, node chain.PlannedNode) error {
	ch, err := newConsenterChange(plan, node)
	if err != nil {
		return err
	}
	addr := channel.Address{Host: ch.c.Host, Port: ch.c.Port}
	for _, c := range channelsOf(n) {
		reader, cfg, in, err := ch.on(ctx, n, plan, c)
		if err != nil {
			return err
		}
		if !in {
			continue
		}
		u, err := channel.RotateConsenter(c.name, cfg, MSPID(node.Organization), ch.c)
		if errors.Is(err, channel.ErrNoChange) {
			continue
		}
		if err != nil {
			return err
		}
		env, err := signAsAdmin(u, ch.admin)
		if err != nil {
			return err
		}
		err = orderUpdate(ctx, n, plan, c.name, ch.admin, env, reader, func(cfg *cb.Config) (bool, error) {
			tlsCert, _, err := channel.ConsenterCerts(cfg, addr)
			return channel.SameCert(tlsCert, ch.c.ClientTLSCert), err
		})
		if err != nil {
			return fmt.Errorf("give channel %s the renewed certificates of %s: %w", c.name, node.Name, err)
		}
	}
	return nil
}

var _ chain.CertificateReporter = (*Driver)(nil)

// Certificates implements chain.CertificateReporter: its nodes', then its
// organisations' identities', renewed two thirds into their validity.
func (d *Driver) Certificates(spec *apis.NetworkSpec, plan *chain.Plan, now time.Time) ([]chain.Certificate, error) {
	return Certificates(spec, plan, now)
}

// Certificates are the certificates of spec's network that plan keeps
// and the platform renews: its nodes', then its organisations'
// identities', as of now.
func Certificates(spec *apis.NetworkSpec, plan *chain.Plan, now time.Time) ([]chain.Certificate, error) {
	r := newRenewal(spec, plan, now)
	var out []chain.Certificate
	add := func(owner string, f certFile, data []byte, renewed bool) error {
		if data == nil {
			return fmt.Errorf("the plan has no %s", f.path)
		}
		c, err := pki.ParseCertPEM(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
		ca, err := r.ca(f.org, f.kind)
		if err != nil {
			return err
		}
		why, err := r.due(data, ca)
		if err != nil {
			return err
		}
		at := renewAt(c).UTC().Truncate(time.Second)
		if !renewed {
			why, at = "", time.Time{}
		}
		kind := "enrolment"
		if f.kind == pki.KindTLS {
			kind = "tls"
		}
		if owner == "" {
			owner = c.Subject.CommonName
		}
		out = append(out, chain.Certificate{
			Owner: owner, Organization: f.org, Kind: kind, Serial: c.SerialNumber.Text(16),
			NotBefore: c.NotBefore, NotAfter: c.NotAfter, RenewAt: at, Due: why,
		})
		return nil
	}
	for _, pn := range plan.Nodes {
		if pn.Role == apis.RoleChaincode {
			continue
		}
		for _, f := range nodeCerts(pn.Organization) {
			if err := add(pn.Name, f, nodeFile(pn, f.path), pn.Joining || r.renews(pn)); err != nil {
				return nil, fmt.Errorf("node %s: %w", pn.Name, err)
			}
		}
	}
	for _, org := range orgsOf(spec, plan) {
		for _, f := range orgCerts(plan, org) {
			if err := add("", f, plan.Artifact(f.path), true); err != nil {
				return nil, fmt.Errorf("organisation %s: %w", org, err)
			}
		}
	}
	return out, nil
}

// unsettled says what the network waits for before a node of it may
// restart with renewed certificates, "" when nothing: every node runs,
// and every orderer is in touch with all the others (a Raft or BFT
// orderer just restarted reports its running before its cluster has it
// back, and a second consenter restarted meanwhile may cost the quorum);
// of a BFT service, every orderer also follows the same leader on every
// channel, so that no view change is under way.
func (d *Driver) unsettled(ctx context.Context, n *apis.Network, plan *chain.Plan) string {
	var down, alone []string
	orderers := 0
	for _, s := range n.Status.Nodes {
		if s.Role == apis.RoleValidator {
			orderers++
		}
	}
	for _, s := range n.Status.Nodes {
		switch {
		case s.Role == apis.RoleChaincode:
		case s.Phase != apis.NodeRunning || s.Joining:
			down = append(down, s.Name)
		case s.Role == apis.RoleValidator && s.Peers < orderers-1:
			alone = append(alone, s.Name)
		}
	}
	switch {
	case len(down) > 0:
		return strings.Join(down, ", ") + " to run"
	case len(alone) > 0:
		return strings.Join(alone, ", ") + " to be in touch with the other orderers"
	case !n.Spec.Fabric.IsBFT():
		return ""
	}
	// A BFT orderer just restarted follows the leader again only after
	// heartbeats, or a view change, have passed: another consenter
	// restarted before then leaves a view change without its quorum.
	for _, s := range n.Status.Nodes {
		if s.Role == apis.RoleValidator && s.StartedAt != nil && time.Since(*s.StartedAt) < bftSettle {
			return s.Name + ", restarted at " + s.StartedAt.UTC().Format(time.TimeOnly) + ", to settle"
		}
	}
	for _, c := range channelsOf(n) {
		leader := -1.0
		for _, pn := range plan.Nodes {
			if pn.Role != apis.RoleValidator {
				continue
			}
			body, err := d.get(ctx, pn.Endpoints[PortOperations]+"/metrics")
			if err != nil {
				return pn.Name + " to answer: " + err.Error()
			}
			m := ParseMetrics(body, c.name)
			if !bftReady(body, c.name, m) {
				return pn.Name + " to follow a leader on channel " + c.name
			}
			if leader >= 0 && m[metricBFTLeaderID] != leader {
				return "the orderers to agree on a leader on channel " + c.name
			}
			leader = m[metricBFTLeaderID]
		}
	}
	return ""
}
