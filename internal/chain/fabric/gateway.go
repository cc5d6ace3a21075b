package fabric

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
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
	// Nonce tells apart two calls that are otherwise the same: the
	// transaction ID is made from the body, so that the same body sent
	// twice is one transaction, committed once.
	Nonce string `json:"nonce,omitempty"`
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
			`{"chaincode": NAME, "function": NAME, "args": [STRING, ...], "organization": NAME (optional), "identity": NAME (optional), "nonce": STRING (optional)}: %v`, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Call{}, malformed("the body must be one JSON object, with nothing after it")
	}
	if err := c.validate(); err != nil {
		return Call{}, err
	}
	return c, nil
}

// ParseQuery reads a Fabric query: path is /CHAINCODE/FUNCTION and data,
// when given, the JSON array of the function's arguments, all strings.
func ParseQuery(path string, data []byte) (Call, error) {
	cc, fn, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok || !strings.HasPrefix(path, "/") {
		return Call{}, malformed("query path must be /CHAINCODE/FUNCTION (for example /notary/Get), not %q", path)
	}
	c := Call{Chaincode: cc, Function: fn}
	if len(bytes.TrimSpace(data)) > 0 {
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

// endorsement is one organisation's answer to a proposal.
type endorsement struct {
	org  string
	resp *pb.ProposalResponse
	err  error
}

// Submit implements chain.Ledger: tx is a Call (see ParseCall), signed
// as the admin of the call's organisation (see defaultOrg), endorsed by
// node and by a peer of
// every other organisation of the plan (the channel's MAJORITY
// endorsement policy needs more than half of them), and sent to an
// orderer. It returns once the orderer accepted it. The chaincode's
// refusal on node is the result's code (its status) and log. The
// transaction ID comes from tx and the signer: the same body sent again
// is the same transaction, which the peers recognise (the result then
// names it, so that the gateway finds its block).
func (l *ledger) Submit(ctx context.Context, node chain.PlannedNode, tx []byte) (chain.SubmitResult, error) {
	call, err := ParseCall(tx)
	if err != nil {
		return chain.SubmitResult{}, err
	}
	org := call.Organization
	switch {
	case org == "":
		if org = l.defaultOrg(ctx); org == "" {
			return chain.SubmitResult{}, fmt.Errorf("%s: the network's plan has no peer organisation to sign with", node.Name)
		}
	case !slices.ContainsFunc(l.plan.Nodes, func(n chain.PlannedNode) bool { return n.Role == apis.RoleFull && n.Organization == org }):
		return chain.SubmitResult{}, malformed("organization: %q is no peer organisation of the network", org)
	}
	if !chain.MaySignFor(ctx, org) {
		return chain.SubmitResult{}, fmt.Errorf("%w: the caller belongs to no organisation %s, and may not sign as its identities", chain.ErrNotPermitted, org)
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
	p, err := l.dial(node)
	if err != nil {
		return chain.SubmitResult{}, err
	}
	defer p.conn.Close()
	nonce := sha256.Sum256(tx)
	inv, err := lifecycle.NewInvocation(signer, l.plan.ChainID, call.Chaincode, call.Function, call.args(), nonce[:])
	if err != nil {
		return chain.SubmitResult{}, fmt.Errorf("%s: %w", node.Name, err)
	}
	res := chain.SubmitResult{Hash: strings.ToUpper(inv.TxID())}
	ctx, cancel := context.WithTimeout(ctx, ledgerTimeout)
	defer cancel()

	own, err := inv.Endorse(ctx, p.conn)
	var refused *lifecycle.StatusError
	switch {
	case err != nil && strings.Contains(err.Error(), "duplicate transaction found"):
		// The same body was submitted before, and is committed: the
		// peer refuses the proposal with a gRPC error saying so.
		return res, nil
	case errors.As(err, &refused):
		res.Code, res.Log = statusCode(refused.Status), refused.Message
		return res, nil
	case err != nil:
		return chain.SubmitResult{}, fmt.Errorf("endorse %s on %s: %w", res.Hash, node.Name, err)
	}
	others := l.endorseOthers(ctx, inv, node.Organization)
	responses := []*pb.ProposalResponse{own}
	var missing []string
	for _, e := range others {
		if e.err != nil {
			if errors.As(e.err, &refused) {
				// Another organisation's peer refused what node
				// endorsed: their states differ, or the chaincode is
				// not deployed there.
				res.Code, res.Log = statusCode(refused.Status), fmt.Sprintf("%s: %s", e.org, refused.Message)
			}
			missing = append(missing, fmt.Sprintf("%s (%v)", e.org, e.err))
			continue
		}
		responses = append(responses, e.resp)
	}
	orgs := len(others) + 1
	if len(responses)*2 <= orgs {
		if res.Code != 0 {
			return res, nil
		}
		return chain.SubmitResult{}, fmt.Errorf("transaction %s: %d of %d organisations endorsed it and a majority must; no endorsement from %s",
			res.Hash, len(responses), orgs, strings.Join(missing, ", "))
	}
	env, err := inv.Transaction(responses)
	if err != nil {
		res.Code, res.Log = 1, err.Error()
		return res, nil
	}
	if err := l.broadcast(ctx, p.a, env); err != nil {
		return chain.SubmitResult{}, fmt.Errorf("transaction %s: %w", res.Hash, err)
	}
	return res, nil
}

// defaultOrg is the organisation that signs a call naming none: the
// first peer organisation of the plan the caller may sign as (the first,
// when it may sign as none, so that the refusal names it). It does not
// depend on the peer the gateway hands the call to, so that the same body
// is the same transaction ID on every peer, and a call one peer's
// chaincode refused is not signed by another organisation on the next.
func (l *ledger) defaultOrg(ctx context.Context) string {
	first := ""
	for _, n := range l.plan.Nodes {
		if n.Role != apis.RoleFull {
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

// endorseOthers asks a peer of every organisation of the plan but org to
// endorse inv, in parallel; within an organisation it tries its peers in
// turn until one answers.
func (l *ledger) endorseOthers(ctx context.Context, inv *lifecycle.Invocation, org string) []endorsement {
	var orgs []string
	peers := map[string][]chain.PlannedNode{}
	for _, n := range l.plan.Nodes {
		if n.Role != apis.RoleFull || n.Organization == org {
			continue
		}
		if _, ok := peers[n.Organization]; !ok {
			orgs = append(orgs, n.Organization)
		}
		peers[n.Organization] = append(peers[n.Organization], n)
	}
	out := make([]endorsement, len(orgs))
	var wg sync.WaitGroup
	for i, o := range orgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = endorsement{org: o, err: errors.New("no peer")}
			for _, n := range peers[o] {
				resp, err := l.endorseOn(ctx, inv, n)
				out[i] = endorsement{org: o, resp: resp, err: err}
				var refused *lifecycle.StatusError
				if err == nil || errors.As(err, &refused) {
					return
				}
			}
		}()
	}
	wg.Wait()
	return out
}

func (l *ledger) endorseOn(ctx context.Context, inv *lifecycle.Invocation, node chain.PlannedNode) (*pb.ProposalResponse, error) {
	p, err := l.dial(node)
	if err != nil {
		return nil, err
	}
	defer p.conn.Close()
	resp, err := inv.Endorse(ctx, p.conn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", node.Name, err)
	}
	return resp, nil
}

// broadcast sends env to the plan's orderers in turn until one accepts
// it, dialling with a's TLS client certificate.
func (l *ledger) broadcast(ctx context.Context, a *admin, env *cb.Envelope) error {
	var errs []error
	for _, o := range l.plan.Nodes {
		if o.Role != apis.RoleValidator {
			continue
		}
		oa, err := loadAdmin(l.plan, o.Organization)
		if err != nil {
			return err
		}
		conn, err := dialPeer(o, &admin{tls: a.tls, roots: oa.roots})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = lifecycle.Broadcast(ctx, conn, env)
		_ = conn.Close()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", o.Name, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return errors.New("the plan has no orderer")
	}
	return fmt.Errorf("no orderer took it: %w", errors.Join(errs...))
}

// Query implements chain.Ledger: path and data are a Call (see
// ParseQuery), evaluated by node alone, as the admin of its
// organisation, and not sent for ordering. The value is the chaincode's
// payload; a refusal is the result's code (the peer's status) and log.
// The height is the channel's on node before the call, so that the
// answer reflects at least that block.
func (l *ledger) Query(ctx context.Context, node chain.PlannedNode, path string, data []byte) (chain.QueryResult, error) {
	call, err := ParseQuery(path, data)
	if err != nil {
		return chain.QueryResult{}, err
	}
	p, err := l.dial(node)
	if err != nil {
		return chain.QueryResult{}, err
	}
	defer p.conn.Close()
	var res chain.QueryResult
	info, err := l.qscc(ctx, p, "GetChainInfo")
	if err != nil {
		return res, fmt.Errorf("height of channel %s on %s: %w", l.plan.ChainID, node.Name, err)
	}
	var bi cb.BlockchainInfo
	if err := proto.Unmarshal(info, &bi); err != nil {
		return res, fmt.Errorf("height of channel %s on %s: %w", l.plan.ChainID, node.Name, err)
	}
	res.Height = int64(min(bi.GetHeight(), 1<<62)) //nolint:gosec // bounded
	signer, err := appSigner(l.plan, node.Organization)
	if err != nil {
		return res, err
	}
	nonce := make([]byte, 24)
	if _, err := rand.Read(nonce); err != nil {
		return res, err
	}
	inv, err := lifecycle.NewInvocation(signer, l.plan.ChainID, call.Chaincode, call.Function, call.args(), nonce)
	if err != nil {
		return res, fmt.Errorf("%s: %w", node.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, ledgerTimeout)
	defer cancel()
	resp, err := inv.Endorse(ctx, p.conn)
	var refused *lifecycle.StatusError
	switch {
	case errors.As(err, &refused):
		res.Code, res.Log = statusCode(refused.Status), refused.Message
		return res, nil
	case err != nil:
		return res, fmt.Errorf("evaluate %s/%s on %s: %w", call.Chaincode, call.Function, node.Name, err)
	}
	res.Value = resp.GetResponse().GetPayload()
	return res, nil
}
