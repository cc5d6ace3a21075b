package fabric

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/lifecycle"
)

// Call is a call of a chaincode function, as an application submits it
// through the platform's gateway (the body of POST .../transactions) or
// evaluates it (GET .../query?path=/CHAINCODE/FUNCTION&data=ARGS).
type Call struct {
	Chaincode string   `json:"chaincode"`
	Function  string   `json:"function"`
	Args      []string `json:"args,omitempty"`
	// Organization is the peer organisation whose identity signs the
	// transaction; empty means the network's first (see defaultOrg).
	Organization string `json:"organization,omitempty"`
	// Identity is the application identity of that organisation,
	// enrolled through the API with a key the platform holds, that signs
	// the transaction; empty means the organisation's built-in one.
	Identity string `json:"identity,omitempty"`
	// Channel is the channel the chaincode is on, one of the network's
	// spec.fabric.channels; empty means the one every organisation
	// shares.
	Channel string `json:"channel,omitempty"`
	// Nonce tells apart two calls that are otherwise the same: the
	// transaction ID is made from the body, so that the same body sent
	// twice is one transaction, committed once.
	Nonce string `json:"nonce,omitempty"`
	// Transient is private data for the chaincode (its GetTransient
	// map), such as what it writes to a private data collection: the
	// endorsing peers get it with the proposal; the transaction, and so
	// the channel, the explorer and the transaction's ID, do not carry
	// it (see callNonce).
	Transient map[string]TransientValue `json:"transient,omitempty"`
	// EndorsingOrganizations, when given, are the peer organisations
	// whose peers endorse the call, one peer each, instead of those the
	// peer's gateway plans from the chaincode's endorsement policy (see
	// endorsingMSPs).
	EndorsingOrganizations []string `json:"endorsingOrganizations,omitempty"`
}

// QueryData is a query's data as an object: the function's arguments,
// and transient data for the chaincode, which the peer's gateway then
// has a peer of the queried peer's organisation evaluate. The API takes
// it in the body of POST .../query, never in a URL.
type QueryData struct {
	Args      []string                  `json:"args,omitempty"`
	Transient map[string]TransientValue `json:"transient,omitempty"`
}

// Limits of a call.
const (
	maxCallArgs     = 64
	maxFunctionName = 128
)

// chaincodeNameRE is Fabric's rule for a chaincode name
// (core/chaincode/lifecycle.ChaincodeNameRegExp).
var chaincodeNameRE = regexp.MustCompile(`^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$`)

// systemChaincodes are the peer's own chaincodes. Applications have no
// business with them (and, on a plan made before organisations had an
// application identity, calls go out signed by an organisation's admin,
// which could install chaincode or join channels): they are refused.
var systemChaincodes = []string{"cscc", "escc", "lscc", "qscc", "vscc", lifecycle.SystemChaincode}

// ParseCall reads the body of a submitted Fabric transaction. Its error
// wraps chain.ErrMalformed and names every problem at once.
func ParseCall(body []byte) (Call, error) {
	var c Call
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Call{}, malformed("the body must be a JSON object "+
			`{"chaincode": NAME, "function": NAME, "args": [STRING, ...], "organization": NAME (optional), "identity": NAME (optional), "channel": NAME (optional), "nonce": STRING (optional), "transient": {KEY: BASE64 or {"text": STRING}, ...} (optional), "endorsingOrganizations": [NAME, ...] (optional)}: %v`, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Call{}, malformed("the body must be one JSON object, with nothing after it")
	}
	if err := c.validate(); err != nil {
		return Call{}, err
	}
	return c, nil
}

// ParseQuery reads a Fabric query: path is /CHAINCODE/FUNCTION, or
// /CHANNEL/CHAINCODE/FUNCTION for chaincode on another channel than the
// shared one, and data, when given, the JSON array of the function's
// arguments, all strings, or a QueryData object, which may carry
// transient data as well.
func ParseQuery(path string, data []byte) (Call, error) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if !strings.HasPrefix(path, "/") || len(parts) < 2 || len(parts) > 3 {
		return Call{}, malformed("query path must be /CHAINCODE/FUNCTION (for example /notary/Get), or /CHANNEL/CHAINCODE/FUNCTION, not %q", path)
	}
	c := Call{Chaincode: parts[len(parts)-2], Function: parts[len(parts)-1]}
	if len(parts) == 3 {
		c.Channel = parts[0]
	}
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '{' {
		var q QueryData
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&q); err != nil {
			return Call{}, malformed(`query data must be {"args": [STRING, ...], "transient": {KEY: BASE64 or {"text": STRING}, ...}}: %v`, err)
		}
		c.Args, c.Transient = q.Args, q.Transient
	} else if len(data) > 0 {
		if err := json.Unmarshal(data, &c.Args); err != nil {
			return Call{}, malformed("query data must be the JSON array of the function's arguments, all strings "+
				`(for example ["9f86d0..."]): %v`, err)
		}
	}
	if err := c.validate(); err != nil {
		return Call{}, err
	}
	return c, nil
}

func (c Call) validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	switch {
	case c.Chaincode == "":
		add("chaincode: required, the name the chaincode was deployed under (see GET .../contracts)")
	case slices.Contains(systemChaincodes, c.Chaincode):
		add("chaincode: %q is a system chaincode of the peers, which applications do not call", c.Chaincode)
	case !chaincodeNameRE.MatchString(c.Chaincode):
		add("chaincode: %q is no chaincode name (letters and digits, joined by single '-' or '_')", c.Chaincode)
	}
	switch {
	case c.Function == "":
		add("function: required, the chaincode function to call (such as Notarize)")
	case len(c.Function) > maxFunctionName || strings.ContainsAny(c.Function, "/ \t\r\n"):
		add("function: %q is no function name (at most %d characters, no '/' or spaces)", c.Function, maxFunctionName)
	}
	if len(c.Args) > maxCallArgs {
		add("args: %d arguments, at most %d", len(c.Args), maxCallArgs)
	}
	if c.Identity != "" {
		if err := CheckIdentityName(c.Identity); err != nil {
			add("identity: %v", err)
		}
	}
	if c.Channel != "" {
		if msg := checkChannel(c.Channel); msg != "" {
			add("channel: %s", msg)
		}
	}
	problems = append(problems, checkTransient(c.Transient)...)
	seen := map[string]int{}
	for i, org := range c.EndorsingOrganizations {
		if j, dup := seen[org]; dup {
			add("endorsingOrganizations[%d]: %q is endorsingOrganizations[%d] too", i, org, j)
			continue
		}
		seen[org] = i
		if org == "" {
			add("endorsingOrganizations[%d]: empty; name a peer organisation of the network", i)
		}
	}
	if len(problems) > 0 {
		return malformed("%s", strings.Join(problems, "; "))
	}
	return nil
}

func (c Call) args() [][]byte {
	out := make([][]byte, len(c.Args))
	for i, a := range c.Args {
		out[i] = []byte(a)
	}
	return out
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", chain.ErrMalformed, fmt.Sprintf(format, args...))
}

// signerOf is an organisation's admin as a signer.
func signerOf(a *admin) (channel.Signer, error) {
	key, ok := a.signer.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return channel.Signer{}, fmt.Errorf("admin of %s: not an ECDSA key", a.signer.MSPID)
	}
	return channel.Signer{MSPID: a.signer.MSPID, Cert: a.signer.Certificate, Key: key}, nil
}

// Submit implements chain.Ledger: tx is a Call (see ParseCall), signed
// by an application identity (node OU client) of the call's organisation
// (see defaultOrg): the one the call names, enrolled through the API
// (see WithIdentityKeys), else the organisation's built-in one (its
// admin on a plan made before there was one), and handed to node's
// Fabric Gateway service, which has the peers the chaincode's endorsement
// policy needs endorse it (found by service discovery, node's own first),
// or one peer of each of the call's EndorsingOrganizations, and sends it
// to the ordering service. It returns once an orderer
// accepted it. A chaincode's refusal is the result's code (its status)
// and log. The
// transaction ID comes from tx and the signer: the same body sent again
// is the same transaction, which the peers recognise (the result then
// names it, so that the gateway finds its block).
func (l *ledger) Submit(ctx context.Context, node chain.PlannedNode, tx []byte) (chain.SubmitResult, error) {
	call, err := ParseCall(tx)
	if err != nil {
		return chain.SubmitResult{}, err
	}
	ch, err := l.callChannel(call.Channel)
	if err != nil {
		return chain.SubmitResult{}, err
	}
	org := call.Organization
	switch {
	case org == "":
		if org = l.defaultOrg(ctx, ch); org == "" {
			return chain.SubmitResult{}, fmt.Errorf("%s: the network's plan has no peer organisation of channel %s to sign with", node.Name, ch.name)
		}
	case !slices.ContainsFunc(l.plan.Nodes, func(n chain.PlannedNode) bool { return n.Role == apis.RoleFull && n.Organization == org }):
		return chain.SubmitResult{}, malformed("organization: %q is no peer organisation of the network", org)
	case !ch.has(org):
		return chain.SubmitResult{}, malformed("organization: %q is no member of channel %s (its members: %s)", org, ch.name, strings.Join(ch.orgs, ", "))
	}
	switch {
	case !chain.MaySignFor(ctx, org) && call.Organization == "" && ch.name != l.plan.ChainID:
		return chain.SubmitResult{}, fmt.Errorf("%w: the caller belongs to no member organisation of channel %s (its members: %s)", chain.ErrNotPermitted, ch.name, strings.Join(ch.orgs, ", "))
	case !chain.MaySignFor(ctx, org):
		return chain.SubmitResult{}, fmt.Errorf("%w: the caller belongs to no organisation %s, and may not sign as its identities", chain.ErrNotPermitted, org)
	}
	endorsers, err := l.endorsingMSPs(call, ch)
	if err != nil {
		return chain.SubmitResult{}, err
	}
	var signer channel.Signer
	if call.Identity != "" {
		signer, err = enrolledSigner(ctx, org, call.Identity)
	} else {
		signer, err = appSigner(l.plan, org)
	}
	if err != nil {
		return chain.SubmitResult{}, err
	}
	// A peer of the channel carries the call: node, unless its
	// organisation is no member (a node that is no peer is refused as
	// unreachable, below).
	if node.Role == apis.RoleFull {
		node, _ = peerOn(l.plan, ch, node, org)
	}
	p, err := l.dial(node)
	if err != nil {
		return chain.SubmitResult{}, err
	}
	defer p.close()
	nonce, err := callNonce(tx, call, signer)
	if err != nil {
		return chain.SubmitResult{}, err
	}
	inv, err := lifecycle.NewPrivateInvocation(signer, ch.name, call.Chaincode, call.Function, call.args(), call.transientMap(), nonce)
	if err != nil {
		return chain.SubmitResult{}, fmt.Errorf("%s: %w", node.Name, err)
	}
	res := chain.SubmitResult{Hash: strings.ToUpper(inv.TxID())}
	ctx, cancel := context.WithTimeout(ctx, ledgerTimeout)
	defer cancel()

	err = gatewaySubmit(ctx, p.conn, signer, inv, endorsers)
	var refused *lifecycle.StatusError
	switch {
	case err != nil && strings.Contains(err.Error(), "duplicate transaction found"):
		// The same body was submitted before, and is committed: the
		// peer refuses the proposal, saying so.
		return res, nil
	case errors.As(err, &refused):
		res.Code, res.Log = statusCode(refused.Status), refused.Message
		return res, nil
	case err != nil:
		return chain.SubmitResult{}, fmt.Errorf("transaction %s via %s: %w", res.Hash, node.Name, err)
	}
	return res, nil
}

// endorsingMSPs are the MSP IDs of the organisations the call names to
// endorse it, each a peer organisation of the network and a member of
// channel ch; none when it names none.
func (l *ledger) endorsingMSPs(call Call, ch fabricChannel) ([]string, error) {
	var problems, out []string
	for i, org := range call.EndorsingOrganizations {
		switch {
		case !slices.ContainsFunc(l.plan.Nodes, func(n chain.PlannedNode) bool { return n.Role == apis.RoleFull && n.Organization == org }):
			problems = append(problems, fmt.Sprintf("endorsingOrganizations[%d]: %q is no peer organisation of the network", i, org))
		case !ch.has(org):
			problems = append(problems, fmt.Sprintf("endorsingOrganizations[%d]: %q is no member of channel %s (its members: %s)", i, org, ch.name, strings.Join(ch.orgs, ", ")))
		default:
			out = append(out, MSPID(org))
		}
	}
	if len(problems) > 0 {
		return nil, malformed("%s", strings.Join(problems, "; "))
	}
	return out, nil
}

// resendAfter is how long a transaction an orderer took may stay out of
// a block before the gateway hands it to another peer.
const resendAfter = 10 * time.Second

var _ chain.Resender = (*ledger)(nil)

// ResendAfter implements chain.Resender. An orderer that took a
// transaction cuts it into a block within its batch timeout (2 s for
// Raft); one that has not shown up long after was lost, as when the
// orderer that took it died before its Raft had it. The same bytes sent
// sooner would be ordered twice, the second copy invalid as a duplicate.
func (l *ledger) ResendAfter() time.Duration { return resendAfter }

// callChannel is the channel a call names: one of the plan's, the
// shared one when name is empty.
func (l *ledger) callChannel(name string) (fabricChannel, error) {
	ch, ok := planChannel(l.plan, name)
	if !ok {
		return ch, malformed("channel: %q is no channel of the network (its channels: %s)", name, strings.Join(append([]string{l.plan.ChainID}, planChannelNames(l.plan)...), ", "))
	}
	if name != "" {
		if err := channelMade(l.plan, name); err != nil {
			return ch, err
		}
	}
	return ch, nil
}

// defaultOrg is the organisation that signs a call naming none: the
// first peer organisation of the plan, a member of channel c, the caller
// may sign as (the first, when it may sign as none, so that the refusal
// names it). It does not depend on the peer the gateway hands the call
// to, so that the same body is the same transaction ID on every peer, and
// a call one peer's chaincode refused is not signed by another
// organisation on the next.
func (l *ledger) defaultOrg(ctx context.Context, c fabricChannel) string {
	first := ""
	for _, n := range l.plan.Nodes {
		if n.Role != apis.RoleFull || !c.has(n.Organization) {
			continue
		}
		if chain.MaySignFor(ctx, n.Organization) {
			return n.Organization
		}
		if first == "" {
			first = n.Organization
		}
	}
	return first
}

// statusCode is a peer's status as a result code: 500, the chaincode's
// shim.Error, unless it chose another.
func statusCode(s int32) uint32 {
	if s <= 0 {
		return 1
	}
	return uint32(s)
}

// Query implements chain.Ledger: path and data are a Call (see
// ParseQuery), evaluated through node's Fabric Gateway service (by a peer
// of node's organisation, the one highest on the channel), signed by its
// organisation's built-in application identity (its admin on a plan made
// before there was one), and not sent for ordering; a query with
// transient data is evaluated by a peer of that organisation only. The value is the
// chaincode's payload; a refusal is the result's code (the peer's status)
// and log. The height is the channel's on node before the call, so that
// the answer reflects at least that block.
func (l *ledger) Query(ctx context.Context, node chain.PlannedNode, path string, data []byte) (chain.QueryResult, error) {
	call, err := ParseQuery(path, data)
	if err != nil {
		return chain.QueryResult{}, err
	}
	ch, err := l.callChannel(call.Channel)
	if err != nil {
		return chain.QueryResult{}, err
	}
	// Every organisation reads the shared channel, as the node's; another
	// channel only its members, each on a peer of its own: the query is
	// signed by a member organisation the caller may sign as.
	org := node.Organization
	if ch.name != l.plan.ChainID {
		if org = l.defaultOrg(ctx, ch); org == "" || !chain.MaySignFor(ctx, org) {
			return chain.QueryResult{}, fmt.Errorf("%w: the caller belongs to no member organisation of channel %s (its members: %s)", chain.ErrNotPermitted, ch.name, strings.Join(ch.orgs, ", "))
		}
		if node.Role == apis.RoleFull && node.Organization != org {
			own, found := peerOn(l.plan, fabricChannel{name: ch.name, orgs: []string{org}}, node, org)
			if !found {
				return chain.QueryResult{}, fmt.Errorf("organisation %s has no peer", org)
			}
			node = own
		}
	}
	p, err := l.dial(node)
	if err != nil {
		return chain.QueryResult{}, err
	}
	defer p.close()
	var res chain.QueryResult
	info, err := l.qsccOn(ctx, p, ch.name, "GetChainInfo")
	if err != nil {
		return res, fmt.Errorf("height of channel %s on %s: %w", ch.name, node.Name, err)
	}
	var bi cb.BlockchainInfo
	if err := proto.Unmarshal(info, &bi); err != nil {
		return res, fmt.Errorf("height of channel %s on %s: %w", ch.name, node.Name, err)
	}
	res.Height = int64(min(bi.GetHeight(), 1<<62)) //nolint:gosec // bounded
	signer, err := appSigner(l.plan, org)
	if err != nil {
		return res, err
	}
	nonce := make([]byte, 24)
	if _, err := rand.Read(nonce); err != nil {
		return res, err
	}
	inv, err := lifecycle.NewPrivateInvocation(signer, ch.name, call.Chaincode, call.Function, call.args(), call.transientMap(), nonce)
	if err != nil {
		return res, fmt.Errorf("%s: %w", node.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, ledgerTimeout)
	defer cancel()
	value, err := gatewayEvaluate(ctx, p.conn, signer, inv)
	var refused *lifecycle.StatusError
	switch {
	case errors.As(err, &refused):
		res.Code, res.Log = statusCode(refused.Status), refused.Message
		return res, nil
	case err != nil:
		return res, fmt.Errorf("evaluate %s/%s via %s: %w", call.Chaincode, call.Function, node.Name, err)
	}
	res.Value = value
	return res, nil
}
