package channel

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
)

// Errors of config updates, to tell with errors.Is what is wrong.
var (
	ErrNoChange       = errors.New("the update changes nothing")
	ErrUnknownOrg     = errors.New("no such organisation in the channel")
	ErrOrgExists      = errors.New("organisation already in the channel")
	ErrTooFewSigners  = errors.New("too few signers")
	ErrSigner         = errors.New("invalid signer")
	ErrUnsupportedMod = errors.New("unsupported modification policy")
)

// Signer is an organisation admin's signing identity: its enrolment
// certificate (with the admin OU) and key.
type Signer struct {
	MSPID string
	Cert  *x509.Certificate
	Key   *ecdsa.PrivateKey
}

func (s Signer) identity() *configtx.SigningIdentity {
	return &configtx.SigningIdentity{Certificate: s.Cert, PrivateKey: s.Key, MSPID: s.MSPID}
}

// Update is a config update of a running channel, waiting for the
// signatures its modification policy needs.
type Update struct {
	ChannelID string
	// ConfigUpdate is the marshalled common.ConfigUpdate the signers sign.
	ConfigUpdate []byte
	// Policy is who must sign.
	Policy Requirement
}

// Requirement is a modification policy reduced to what signing needs: the
// admins of Need of the organisations MSPIDs sign.
type Requirement struct {
	// Rule names the policy in errors: "MAJORITY Admins", "Org1MSP Admins".
	Rule string
	Need int
	orgs []orgMSP
}

// orgMSP is an organisation as the current configuration defines it.
type orgMSP struct {
	Group string
	MSPID string
	Roots []*x509.Certificate
}

// MSPIDs are the organisations whose admins may sign.
func (r Requirement) MSPIDs() []string {
	var ids []string
	for _, o := range r.orgs {
		ids = append(ids, o.MSPID)
	}
	return ids
}

func (r Requirement) org(mspID string) (orgMSP, bool) {
	for _, o := range r.orgs {
		if o.MSPID == mspID {
			return o, true
		}
	}
	return orgMSP{}, false
}

// SetAnchorPeers is the update that makes peers an application
// organisation's anchor peers, replacing any it had. The organisation's
// admin signs it: the AnchorPeers value is governed by the organisation's
// own Admins policy.
func SetAnchorPeers(channelID string, config *cb.Config, mspID string, peers []Address) (*Update, error) {
	fail := func(err error) (*Update, error) {
		return nil, fmt.Errorf("channel %s: set anchor peers of %s: %w", channelID, mspID, err)
	}
	if err := checkConfig(channelID, config); err != nil {
		return fail(err)
	}
	for i, a := range peers {
		if a.Host == "" || a.Port < 1 || a.Port > 65535 {
			return fail(fmt.Errorf("peers[%d]: %q is not host:port", i, a))
		}
	}
	tx := configtx.New(config)
	org, err := applicationGroup.org(tx.OriginalConfig(), mspID)
	if err != nil {
		return fail(err)
	}
	ao := tx.Application().Organization(org.Group)
	old, err := ao.AnchorPeers()
	if err != nil {
		return fail(err)
	}
	for _, a := range old {
		if err := ao.RemoveAnchorPeer(a); err != nil {
			return fail(err)
		}
	}
	for _, a := range peers {
		if err := ao.AddAnchorPeer(configtx.Address{Host: a.Host, Port: a.Port}); err != nil {
			return fail(err)
		}
	}
	req, err := orgAdmins(config, org)
	if err != nil {
		return fail(err)
	}
	u, err := newUpdate(channelID, &tx, req)
	if err != nil {
		return fail(err)
	}
	return u, nil
}

// AddOrganization is the update that adds an application organisation to
// the channel. The Application group's modification policy (MAJORITY
// Admins) governs it: the admins of a majority of the organisations
// already in the channel sign.
func AddOrganization(channelID string, config *cb.Config, org Organization) (*Update, error) {
	fail := func(err error) (*Update, error) {
		return nil, fmt.Errorf("channel %s: add organisation %s: %w", channelID, org.MSPID, err)
	}
	if err := checkConfig(channelID, config); err != nil {
		return fail(err)
	}
	if err := errors.Join(org.validate("org", false)...); err != nil {
		return fail(err)
	}
	tx := configtx.New(config)
	if _, err := applicationGroup.org(tx.OriginalConfig(), org.MSPID); err == nil {
		return fail(ErrOrgExists)
	}
	if _, ok := tx.OriginalConfig().GetChannelGroup().GetGroups()[configtx.ApplicationGroupKey].GetGroups()[org.MSPID]; ok {
		return fail(fmt.Errorf("%w: the group %s exists", ErrOrgExists, org.MSPID))
	}
	req, err := applicationGroup.admins(config)
	if err != nil {
		return fail(err)
	}
	if err := tx.Application().SetOrganization(org.peerOrg()); err != nil {
		return fail(err)
	}
	u, err := newUpdate(channelID, &tx, req)
	if err != nil {
		return fail(err)
	}
	return u, nil
}

// RemoveOrganization is the update that removes an application
// organisation from the channel, signed like AddOrganization by a
// majority of the organisations' admins (the leaving one counts: the
// policy is evaluated against the channel as it is).
func RemoveOrganization(channelID string, config *cb.Config, mspID string) (*Update, error) {
	fail := func(err error) (*Update, error) {
		return nil, fmt.Errorf("channel %s: remove organisation %s: %w", channelID, mspID, err)
	}
	if err := checkConfig(channelID, config); err != nil {
		return fail(err)
	}
	tx := configtx.New(config)
	org, err := applicationGroup.org(tx.OriginalConfig(), mspID)
	if err != nil {
		return fail(err)
	}
	req, err := applicationGroup.admins(config)
	if err != nil {
		return fail(err)
	}
	if len(req.orgs) == 1 {
		return fail(errors.New("it is the channel's last organisation"))
	}
	tx.Application().RemoveOrganization(org.Group)
	u, err := newUpdate(channelID, &tx, req)
	if err != nil {
		return fail(err)
	}
	return u, nil
}

// checkConfig refuses what configtx would panic on: no configuration, or
// one without an Application group.
func checkConfig(channelID string, config *cb.Config) error {
	if err := checkChannelName(channelID); err != nil {
		return err
	}
	if config.GetChannelGroup().GetGroups()[configtx.ApplicationGroupKey] == nil {
		return errors.New("the configuration has no Application group")
	}
	return nil
}

func newUpdate(channelID string, tx *configtx.ConfigTx, req Requirement) (*Update, error) {
	if proto.Equal(tx.OriginalConfig(), tx.UpdatedConfig()) {
		return nil, ErrNoChange
	}
	b, err := tx.ComputeMarshaledUpdate(channelID)
	if err != nil {
		return nil, fmt.Errorf("compute update: %w", err)
	}
	return &Update{ChannelID: channelID, ConfigUpdate: b, Policy: req}, nil
}

// orgGroup is a group of organisations in a channel's configuration: the
// Application group's, or the Orderer group's.
type orgGroup struct {
	key      string // configtx.ApplicationGroupKey or OrdererGroupKey
	label    string // in errors: "organisation", "orderer organisation"
	notFound string // the error of an MSP ID the group lacks, after ErrUnknownOrg
	msp      func(tx *configtx.ConfigTx, group string) *configtx.OrganizationMSP
}

var (
	applicationGroup = orgGroup{key: configtx.ApplicationGroupKey, label: "organisation", notFound: "%w: %s",
		msp: func(tx *configtx.ConfigTx, g string) *configtx.OrganizationMSP {
			return tx.Application().Organization(g).MSP()
		}}
	ordererGroup = orgGroup{key: configtx.OrdererGroupKey, label: "orderer organisation", notFound: "%w: no orderer organisation %s",
		msp: func(tx *configtx.ConfigTx, g string) *configtx.OrganizationMSP {
			return tx.Orderer().Organization(g).MSP()
		}}
)

// orgs are the group's organisations in a configuration, by MSP ID
// (which need not be their group's name in a channel made elsewhere).
func (g orgGroup) orgs(config *cb.Config) ([]orgMSP, error) {
	grp, ok := config.GetChannelGroup().GetGroups()[g.key]
	if !ok {
		return nil, fmt.Errorf("the configuration has no %s group", g.key)
	}
	tx := configtx.New(config)
	var orgs []orgMSP
	for group := range grp.Groups {
		msp, err := g.msp(&tx, group).Configuration()
		if err != nil {
			return nil, fmt.Errorf("%s %s: MSP: %w", g.label, group, err)
		}
		orgs = append(orgs, orgMSP{Group: group, MSPID: msp.Name, Roots: append(msp.RootCerts, msp.IntermediateCerts...)})
	}
	slices.SortFunc(orgs, func(a, b orgMSP) int { return strings.Compare(a.MSPID, b.MSPID) })
	return orgs, nil
}

// org is the group's organisation mspID.
func (g orgGroup) org(config *cb.Config, mspID string) (orgMSP, error) {
	orgs, err := g.orgs(config)
	if err != nil {
		return orgMSP{}, err
	}
	for _, o := range orgs {
		if o.MSPID == mspID {
			return o, nil
		}
	}
	return orgMSP{}, fmt.Errorf(g.notFound, ErrUnknownOrg, mspID)
}

// admins reads the group's modification policy, an ImplicitMeta rule
// over the organisations' Admins. (The Orderer group's governs its
// ConsensusType value; an orderer organisation's OrdererEndpoints value is
// governed by that organisation's Admins, which an admin of it satisfies
// as well.)
func (g orgGroup) admins(config *cb.Config) (Requirement, error) {
	rule, err := implicitAdmins(config.GetChannelGroup().GetGroups()[g.key], g.key)
	if err != nil {
		return Requirement{}, err
	}
	orgs, err := g.orgs(config)
	if err != nil {
		return Requirement{}, err
	}
	return adminsOf(rule, orgs), nil
}

// orgAdmins is the requirement of a value in an organisation's group:
// its Admins policy, one admin of its own.
func orgAdmins(config *cb.Config, org orgMSP) (Requirement, error) {
	g := config.GetChannelGroup().GetGroups()[configtx.ApplicationGroupKey].GetGroups()[org.Group]
	if g.GetModPolicy() != configtx.AdminsPolicyKey {
		return Requirement{}, fmt.Errorf("%w: the group of %s has mod policy %q, not Admins", ErrUnsupportedMod, org.MSPID, g.GetModPolicy())
	}
	return Requirement{Rule: org.MSPID + " Admins", Need: 1, orgs: []orgMSP{org}}, nil
}

// checkSigner refuses a signer whose signature would not count: not an
// organisation of the policy, not an admin, or a certificate its
// organisation's CA in the channel did not sign.
func (r Requirement) checkSigner(mspID string, cert *x509.Certificate) error {
	org, ok := r.org(mspID)
	if !ok {
		return fmt.Errorf("%w %s: not one of the organisations whose admins %s counts (%s)",
			ErrSigner, mspID, r.Rule, strings.Join(r.MSPIDs(), ", "))
	}
	if cert == nil {
		return fmt.Errorf("%w %s: no certificate", ErrSigner, mspID)
	}
	if !slices.Contains(cert.Subject.OrganizationalUnit, ouAdmin) {
		return fmt.Errorf("%w %s: %s is not an admin (OU %q)", ErrSigner, mspID, cert.Subject.CommonName, cert.Subject.OrganizationalUnit)
	}
	roots := x509.NewCertPool()
	for _, c := range org.Roots {
		roots.AddCert(c)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("%w %s: %s is not signed by the organisation's CA in the channel: %w", ErrSigner, mspID, cert.Subject.CommonName, err)
	}
	return nil
}

// enough refuses a set of organisations that does not satisfy the policy.
func (r Requirement) enough(mspIDs map[string]bool) error {
	if len(mspIDs) < r.Need {
		return fmt.Errorf("%w: the admins of %d of the %d organisations sign, and %s needs %d",
			ErrTooFewSigners, len(mspIDs), len(r.orgs), r.Rule, r.Need)
	}
	return nil
}

// Signature is one admin's signature of the update, for ChainDock to
// collect from each organisation in turn and pass to Envelope.
func (u *Update) Signature(s Signer) (*cb.ConfigSignature, error) {
	if err := u.Policy.checkSigner(s.MSPID, s.Cert); err != nil {
		return nil, fmt.Errorf("channel %s: sign update: %w", u.ChannelID, err)
	}
	sig, err := s.identity().CreateConfigSignature(u.ConfigUpdate)
	if err != nil {
		return nil, fmt.Errorf("channel %s: sign update as %s: %w", u.ChannelID, s.MSPID, err)
	}
	return sig, nil
}

// Sign has every signer sign the update and the submitter, the first
// signer, sign the envelope it goes to the orderer in. It refuses before
// anyone signs when the signers do not satisfy the update's policy.
func (u *Update) Sign(signers ...Signer) (*cb.Envelope, error) {
	if len(signers) == 0 {
		return nil, fmt.Errorf("channel %s: sign update: %w: nobody signs, and %s needs %d", u.ChannelID, ErrTooFewSigners, u.Policy.Rule, u.Policy.Need)
	}
	orgs := map[string]bool{}
	for _, s := range signers {
		if err := u.Policy.checkSigner(s.MSPID, s.Cert); err != nil {
			return nil, fmt.Errorf("channel %s: sign update: %w", u.ChannelID, err)
		}
		orgs[s.MSPID] = true
	}
	if err := u.Policy.enough(orgs); err != nil {
		return nil, fmt.Errorf("channel %s: sign update: %w", u.ChannelID, err)
	}
	var sigs []*cb.ConfigSignature
	for _, s := range signers {
		sig, err := u.Signature(s)
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, sig)
	}
	return u.Envelope(signers[0], sigs...)
}

// Envelope is the CONFIG_UPDATE transaction carrying the update and the
// collected signatures, signed by submitter (the orderer checks it
// against the channel's Writers). It refuses signatures that do not
// verify or do not satisfy the update's policy.
func (u *Update) Envelope(submitter Signer, sigs ...*cb.ConfigSignature) (*cb.Envelope, error) {
	orgs := map[string]bool{}
	for i, sig := range sigs {
		id, cert, err := signatureCreator(sig)
		if err != nil {
			return nil, fmt.Errorf("channel %s: signature %d: %w", u.ChannelID, i, err)
		}
		if err := u.Policy.checkSigner(id.Mspid, cert); err != nil {
			return nil, fmt.Errorf("channel %s: signature %d: %w", u.ChannelID, i, err)
		}
		if err := VerifySignature(u.ConfigUpdate, sig, cert); err != nil {
			return nil, fmt.Errorf("channel %s: signature %d by %s: %w", u.ChannelID, i, id.Mspid, err)
		}
		orgs[id.Mspid] = true
	}
	if err := u.Policy.enough(orgs); err != nil {
		return nil, fmt.Errorf("channel %s: %w", u.ChannelID, err)
	}
	env, err := configtx.NewEnvelope(u.ConfigUpdate, sigs...)
	if err != nil {
		return nil, fmt.Errorf("channel %s: envelope: %w", u.ChannelID, err)
	}
	if err := submitter.identity().SignEnvelope(env); err != nil {
		return nil, fmt.Errorf("channel %s: sign envelope as %s: %w", u.ChannelID, submitter.MSPID, err)
	}
	return env, nil
}

// signatureCreator reads who made a config signature.
func signatureCreator(sig *cb.ConfigSignature) (*mb.SerializedIdentity, *x509.Certificate, error) {
	hdr := &cb.SignatureHeader{}
	if err := proto.Unmarshal(sig.GetSignatureHeader(), hdr); err != nil {
		return nil, nil, fmt.Errorf("signature header: %w", err)
	}
	return Creator(hdr.Creator)
}

// Creator decodes a serialized identity: an MSP ID and a PEM certificate.
func Creator(b []byte) (*mb.SerializedIdentity, *x509.Certificate, error) {
	id := &mb.SerializedIdentity{}
	if err := proto.Unmarshal(b, id); err != nil {
		return nil, nil, fmt.Errorf("serialized identity: %w", err)
	}
	block, _ := pem.Decode(id.IdBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("identity of %s: no PEM certificate", id.Mspid)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("identity of %s: %w", id.Mspid, err)
	}
	return id, cert, nil
}

// VerifySignature checks a config signature as Fabric does: ECDSA over
// the SHA-256 of the signature header and the update, with a low S.
func VerifySignature(configUpdate []byte, sig *cb.ConfigSignature, cert *x509.Certificate) error {
	msg := append(slices.Clone(sig.GetSignatureHeader()), configUpdate...)
	return verifyECDSA(cert, msg, sig.GetSignature())
}
