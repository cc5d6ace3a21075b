package channel

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/hyperledger/fabric-config/configtx"
	"github.com/hyperledger/fabric-config/configtx/orderer"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

// ErrNotRaft: the channel's orderers run another consensus than etcdraft,
// whose consenters these updates change.
var ErrNotRaft = errors.New("the channel's consensus is not etcdraft")

// Consenters are the channel's consenters' addresses, Raft's or BFT's,
// in the configuration's order.
func Consenters(config *cb.Config) ([]Address, error) {
	if t, err := consensusOf(config); err == nil && t == ConsensusBFT {
		mapping, err := BFTConsenters(config)
		if err != nil {
			return nil, err
		}
		var out []Address
		for _, c := range mapping {
			out = append(out, Address{Host: c.Host, Port: int(c.Port)})
		}
		return out, nil
	}
	cfg, err := raftConfig(config)
	if err != nil {
		return nil, err
	}
	var out []Address
	for _, c := range cfg.EtcdRaft.Consenters {
		out = append(out, Address{Host: c.Address.Host, Port: c.Address.Port})
	}
	return out, nil
}

func raftConfig(config *cb.Config) (configtx.Orderer, error) {
	if config.GetChannelGroup().GetGroups()[configtx.OrdererGroupKey] == nil {
		return configtx.Orderer{}, errors.New("the configuration has no Orderer group")
	}
	tx := configtx.New(config)
	cfg, err := tx.Orderer().Configuration()
	if err != nil {
		return configtx.Orderer{}, fmt.Errorf("orderer configuration: %w", err)
	}
	if cfg.OrdererType != orderer.ConsensusTypeEtcdRaft {
		return configtx.Orderer{}, fmt.Errorf("%w: it is %s", ErrNotRaft, cfg.OrdererType)
	}
	return cfg, nil
}

// AddConsenter is the update that makes an orderer of organisation
// ordererMSPID a Raft consenter of the channel (its host and port, where
// the other consenters reach it, and its TLS certificates) and adds its
// address to the organisation's orderer endpoints, from which peers and clients pull
// blocks. The admins of the orderer organisations sign (the Orderer
// group's modification policy, MAJORITY Admins). Raft takes one
// consenter in at a time: an orderer accepts no update that changes more
// than one. Of a BFT channel, the update maps the orderer in the Orderers
// value instead, with its enrolment certificate (c.Identity) and a fresh
// id, and rewrites the BlockValidation policy to the new quorum.
func AddConsenter(channelID string, config *cb.Config, ordererMSPID string, c Consenter) (*Update, error) {
	if t, err := consensusOf(config); err == nil && t == ConsensusBFT {
		return addBFTConsenter(channelID, config, ordererMSPID, c)
	}
	addr := Address{Host: c.Host, Port: c.Port}
	fail := func(err error) (*Update, error) {
		return nil, fmt.Errorf("channel %s: add consenter %s: %w", channelID, addr, err)
	}
	if c.Host == "" || c.Port < 1 || c.Port > 65535 {
		return fail(fmt.Errorf("%q is not host:port", addr))
	}
	if c.ClientTLSCert == nil || c.ServerTLSCert == nil {
		return fail(errors.New("no TLS certificate"))
	}
	cfg, err := raftConfig(config)
	if err != nil {
		return fail(err)
	}
	for _, have := range cfg.EtcdRaft.Consenters {
		if have.Address.Host == c.Host && have.Address.Port == c.Port {
			return fail(fmt.Errorf("%w: %s is a consenter", ErrNoChange, addr))
		}
	}
	org, err := ordererGroup.org(config, ordererMSPID)
	if err != nil {
		return fail(err)
	}
	tx := configtx.New(config)
	if err := tx.Orderer().AddConsenter(orderer.Consenter{
		Address:       orderer.EtcdAddress{Host: c.Host, Port: c.Port},
		ClientTLSCert: c.ClientTLSCert,
		ServerTLSCert: c.ServerTLSCert,
	}); err != nil {
		return fail(err)
	}
	u, err := endpointUpdate(channelID, config, &tx, org, addr, true)
	if err != nil {
		return fail(err)
	}
	return u, nil
}

// RemoveConsenter is the update that takes the consenter at addr out of
// the channel's Raft, and its address out of organisation ordererMSPID's
// orderer endpoints; the orderer organisations' admins sign, as for
// AddConsenter; of a BFT channel, as AddConsenter too. The last
// consenter is not removed.
func RemoveConsenter(channelID string, config *cb.Config, ordererMSPID string, addr Address) (*Update, error) {
	if t, err := consensusOf(config); err == nil && t == ConsensusBFT {
		return removeBFTConsenter(channelID, config, ordererMSPID, addr)
	}
	fail := func(err error) (*Update, error) {
		return nil, fmt.Errorf("channel %s: remove consenter %s: %w", channelID, addr, err)
	}
	cfg, err := raftConfig(config)
	if err != nil {
		return fail(err)
	}
	i := slices.IndexFunc(cfg.EtcdRaft.Consenters, func(c orderer.Consenter) bool {
		return c.Address.Host == addr.Host && c.Address.Port == addr.Port
	})
	if i < 0 {
		return fail(fmt.Errorf("%w: %s is no consenter", ErrNoChange, addr))
	}
	if len(cfg.EtcdRaft.Consenters) == 1 {
		return fail(errors.New("it is the channel's last consenter"))
	}
	org, err := ordererGroup.org(config, ordererMSPID)
	if err != nil {
		return fail(err)
	}
	tx := configtx.New(config)
	if err := tx.Orderer().RemoveConsenter(cfg.EtcdRaft.Consenters[i]); err != nil {
		return fail(err)
	}
	u, err := endpointUpdate(channelID, config, &tx, org, addr, false)
	if err != nil {
		return fail(err)
	}
	return u, nil
}

// editEndpoint adds addr to orderer organisation org's endpoints in tx,
// or takes it out, unless it is there or not already.
// endpointUpdate adds addr to organisation org's orderer endpoints, or
// takes it out, in tx, which changes the consenters, and makes the update
// of it that the orderer organisations' admins sign.
func endpointUpdate(channelID string, config *cb.Config, tx *configtx.ConfigTx, org orgMSP, addr Address, add bool) (*Update, error) {
	if err := editEndpoint(tx, org, addr, add); err != nil {
		return nil, err
	}
	req, err := ordererGroup.admins(config)
	if err != nil {
		return nil, err
	}
	return newUpdate(channelID, tx, req)
}

func editEndpoint(tx *configtx.ConfigTx, org orgMSP, addr Address, add bool) error {
	oo := tx.Orderer().Organization(org.Group)
	ends, err := endpoints(oo)
	if err != nil {
		return err
	}
	switch has := slices.Contains(ends, addr); {
	case add && !has:
		return oo.SetEndpoint(configtx.Address{Host: addr.Host, Port: addr.Port})
	case !add && has:
		return oo.RemoveEndpoint(configtx.Address{Host: addr.Host, Port: addr.Port})
	}
	return nil
}

func endpoints(o *configtx.OrdererOrg) ([]Address, error) {
	org, err := o.Configuration()
	if err != nil {
		return nil, err
	}
	var out []Address
	for _, e := range org.OrdererEndpoints {
		a, err := parseAddress(e)
		if err != nil {
			return nil, fmt.Errorf("orderer endpoint %q: %w", e, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func parseAddress(s string) (Address, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Address{}, err
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return Address{}, err
	}
	return Address{Host: host, Port: n}, nil
}

// implicitAdmins is the rule of a group's modification policy, which must
// be an ImplicitMeta policy over the organisations' Admins.
func implicitAdmins(g *cb.ConfigGroup, name string) (cb.ImplicitMetaPolicy_Rule, error) {
	modPolicy := g.GetModPolicy()
	p, ok := g.GetPolicies()[modPolicy]
	if !ok {
		return 0, fmt.Errorf("%w: the %s group's mod policy %q is not one of its policies", ErrUnsupportedMod, name, modPolicy)
	}
	if cb.Policy_PolicyType(p.GetPolicy().GetType()) != cb.Policy_IMPLICIT_META {
		return 0, fmt.Errorf("%w: %s/%s is not an ImplicitMeta policy", ErrUnsupportedMod, name, modPolicy)
	}
	imp := &cb.ImplicitMetaPolicy{}
	if err := proto.Unmarshal(p.Policy.Value, imp); err != nil {
		return 0, fmt.Errorf("%s policy %s: %w", name, modPolicy, err)
	}
	if imp.SubPolicy != configtx.AdminsPolicyKey {
		return 0, fmt.Errorf("%w: %s/%s is over %s, not Admins", ErrUnsupportedMod, name, modPolicy, imp.SubPolicy)
	}
	return imp.Rule, nil
}

// adminsOf is the requirement of rule over orgs' Admins policies, each
// assumed to be OR('<MSP ID>.admin') as GenesisBlock writes it.
func adminsOf(rule cb.ImplicitMetaPolicy_Rule, orgs []orgMSP) Requirement {
	n := len(orgs)
	need := map[cb.ImplicitMetaPolicy_Rule]int{
		cb.ImplicitMetaPolicy_ANY:      1,
		cb.ImplicitMetaPolicy_ALL:      n,
		cb.ImplicitMetaPolicy_MAJORITY: n/2 + 1,
	}[rule]
	return Requirement{Rule: rule.String() + " " + configtx.AdminsPolicyKey, Need: need, orgs: orgs}
}
