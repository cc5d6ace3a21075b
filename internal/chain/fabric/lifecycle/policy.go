package lifecycle

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
)

// The rules an endorsement policy may name instead of an expression:
// one, a majority, or all of the organisations' peers.
const (
	PolicyAny      = "ANY"
	PolicyMajority = "MAJORITY"
	PolicyAll      = "ALL"
)

// IsRule reports whether policy names a rule (PolicyAny, PolicyMajority
// or PolicyAll) rather than an expression: one over the organisations a
// channel has when it is applied.
func IsRule(policy string) bool {
	switch strings.TrimSpace(policy) {
	case PolicyAny, PolicyMajority, PolicyAll:
		return true
	}
	return false
}

// Roles a principal of an endorsement policy may have. Fabric also knows
// orderer, which never endorses.
var policyRoles = []string{"peer", "member", "admin", "client"}

// Principal is one 'MSPID.role' of a signature policy.
type Principal struct {
	MSPID string
	Role  string
}

func (p Principal) String() string { return p.MSPID + "." + p.Role }

// PolicyError is a signature policy expression that does not parse; Pos
// is the 1-based position, in characters, of where it goes wrong.
type PolicyError struct {
	Pos int
	Msg string
}

func (e *PolicyError) Error() string { return fmt.Sprintf("at position %d: %s", e.Pos, e.Msg) }

// RulePolicy is the signature policy expression of rule (PolicyAny,
// PolicyMajority or PolicyAll) over the peers of the organisations
// mspIDs: OutOf(1, ...), OutOf(n/2+1, ...) or OutOf(n, ...), principals in
// MSP ID order so that every caller writes the same expression.
func RulePolicy(rule string, mspIDs []string) (string, error) {
	ids := slices.Clone(mspIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return "", errors.New("no organisation to endorse")
	}
	var n int
	switch rule {
	case PolicyAny:
		n = 1
	case PolicyMajority:
		n = len(ids)/2 + 1
	case PolicyAll:
		n = len(ids)
	default:
		return "", fmt.Errorf("%q is none of %s, %s, %s", rule, PolicyAny, PolicyMajority, PolicyAll)
	}
	quoted := make([]string, len(ids))
	for i, id := range ids {
		quoted[i] = "'" + id + ".peer'"
	}
	return fmt.Sprintf("OutOf(%d, %s)", n, strings.Join(quoted, ", ")), nil
}

// ParseSignaturePolicy reads a signature policy expression as Fabric's
// peer CLI takes it: principals 'MSPID.role' combined by AND(...),
// OR(...) and OutOf(n, ...). It returns the policy as _lifecycle keeps
// it and the principals it names, in the order written. Roles are peer,
// member, admin and client. A lone principal is taken as OR of it.
//
// The expression is checked here first, so that a mistake is reported
// with its position; fabric-config's configtx, which parses it with the
// peer CLI's grammar, then builds the envelope.
func ParseSignaturePolicy(expr string) (*cb.SignaturePolicyEnvelope, []Principal, error) {
	p := &policyParser{src: []rune(expr)}
	p.space()
	p.bare = p.pos < len(p.src) && (p.src[p.pos] == '\'' || p.src[p.pos] == '"')
	if err := p.policy(); err != nil {
		return nil, nil, err
	}
	p.space()
	if p.pos < len(p.src) {
		return nil, nil, p.fail("unexpected %q after the end of the policy", string(p.src[p.pos]))
	}

	rule := expr
	if p.bare {
		// Fabric's parser takes gates only; a lone principal is OR of one.
		rule = "OR(" + expr + ")"
	}
	cfg := configtx.New(&cb.Config{ChannelGroup: &cb.ConfigGroup{
		Groups: map[string]*cb.ConfigGroup{configtx.ApplicationGroupKey: {}},
	}})
	const name = "Endorsement"
	if err := cfg.Application().SetPolicy(name, configtx.Policy{Type: configtx.SignaturePolicyType, Rule: rule}); err != nil {
		return nil, nil, err
	}
	cp := cfg.UpdatedConfig().GetChannelGroup().GetGroups()[configtx.ApplicationGroupKey].GetPolicies()[name]
	var env cb.SignaturePolicyEnvelope
	if err := proto.Unmarshal(cp.GetPolicy().GetValue(), &env); err != nil {
		return nil, nil, fmt.Errorf("read the signature policy back: %w", err)
	}
	// The envelope must name what the expression does, no more.
	var got []string
	for _, id := range env.GetIdentities() {
		var role mb.MSPRole
		if err := proto.Unmarshal(id.GetPrincipal(), &role); err != nil {
			return nil, nil, fmt.Errorf("read the signature policy back: %w", err)
		}
		got = append(got, role.GetMspIdentifier()+"."+strings.ToLower(role.GetRole().String()))
	}
	var want []string
	for _, pr := range p.principals {
		want = append(want, pr.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return nil, nil, fmt.Errorf("the policy was read as naming %v, not %v", got, want)
	}
	return &env, p.principals, nil
}

// SignatureValidationParameter is env as a definition's
// ValidationParameter. The bytes are deterministic, as every
// organisation's approval must carry the same.
func SignatureValidationParameter(env *cb.SignaturePolicyEnvelope) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(&pb.ApplicationPolicy{
		Type: &pb.ApplicationPolicy_SignaturePolicy{SignaturePolicy: env},
	})
}

// policyParser checks the grammar of a signature policy expression:
//
//	policy    = principal | gate "(" policies ")"
//	gate      = AND | OR (policies: one or more) | OutOf (n "," policies)
//	principal = a quoted 'MSPID.role'
type policyParser struct {
	src        []rune
	pos        int
	principals []Principal
	// bare: the whole policy is one principal.
	bare bool
}

func (p *policyParser) fail(format string, args ...any) error {
	return &PolicyError{Pos: p.pos + 1, Msg: fmt.Sprintf(format, args...)}
}

func (p *policyParser) space() {
	for p.pos < len(p.src) && strings.ContainsRune(" \t\r\n", p.src[p.pos]) {
		p.pos++
	}
}

// found names what is at the position, for a message.
func (p *policyParser) found() string {
	if p.pos >= len(p.src) {
		return "the end"
	}
	return fmt.Sprintf("%q", string(p.src[p.pos]))
}

func (p *policyParser) expect(r rune) error {
	p.space()
	if p.pos >= len(p.src) || p.src[p.pos] != r {
		return p.fail("expected %q, found %s", string(r), p.found())
	}
	p.pos++
	return nil
}

// The spellings Fabric's parser takes for each gate.
var gates = map[string]string{
	"AND": "AND", "And": "AND", "and": "AND",
	"OR": "OR", "Or": "OR", "or": "OR",
	"OutOf": "OUTOF", "OUTOF": "OUTOF", "outof": "OUTOF",
}

func (p *policyParser) policy() error {
	p.space()
	if p.pos >= len(p.src) {
		return p.fail("expected a principal such as 'Org1MSP.peer' or AND(...), OR(...), OutOf(n, ...), found the end")
	}
	if c := p.src[p.pos]; c == '\'' || c == '"' {
		return p.principal()
	}
	start := p.pos
	for p.pos < len(p.src) && (isLetter(p.src[p.pos]) || isDigit(p.src[p.pos])) {
		p.pos++
	}
	word := string(p.src[start:p.pos])
	gate, ok := gates[word]
	if !ok {
		p.pos = start
		if word == "" {
			return p.fail("expected a principal such as 'Org1MSP.peer' or AND(...), OR(...), OutOf(n, ...), found %s", p.found())
		}
		return p.fail("unknown gate %q: AND, OR or OutOf, or a quoted principal", word)
	}
	if err := p.expect('('); err != nil {
		return err
	}
	at := p.pos
	n := 0
	if gate == "OUTOF" {
		p.space()
		at = p.pos
		for p.pos < len(p.src) && isDigit(p.src[p.pos]) {
			n = n*10 + int(p.src[p.pos]-'0')
			p.pos++
			if n > 1<<20 {
				return p.fail("the number of OutOf is too large")
			}
		}
		if p.pos == at {
			return p.fail("expected the number of OutOf, found %s", p.found())
		}
		if err := p.expect(','); err != nil {
			return err
		}
	}
	count := 0
	for {
		if err := p.policy(); err != nil {
			return err
		}
		count++
		p.space()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if err := p.expect(')'); err != nil {
			return fmt.Errorf("%w (or ',')", err)
		}
		break
	}
	if gate == "OUTOF" && (n < 1 || n > count) {
		p.pos = at
		return p.fail("OutOf(%d, ...) of %d policies: the number must be 1 to %d", n, count, count)
	}
	return nil
}

func (p *policyParser) principal() error {
	quote := p.src[p.pos]
	start := p.pos
	p.pos++
	end := slices.Index(p.src[p.pos:], quote)
	if end < 0 {
		p.pos = start
		return p.fail("the principal's quote is not closed")
	}
	text := string(p.src[p.pos : p.pos+end])
	p.pos = start
	dot := strings.LastIndexByte(text, '.')
	if dot <= 0 {
		return p.fail("principal %q is not 'MSPID.role'", text)
	}
	pr := Principal{MSPID: text[:dot], Role: text[dot+1:]}
	for _, c := range pr.MSPID {
		if !isLetter(c) && !isDigit(c) && c != '.' && c != '-' {
			return p.fail("principal %q: an MSP ID has letters, digits, '.' and '-' only", text)
		}
	}
	if !slices.Contains(policyRoles, pr.Role) {
		return p.fail("principal %q: role %q is none of %s", text, pr.Role, strings.Join(policyRoles, ", "))
	}
	p.principals = append(p.principals, pr)
	p.pos += end + 2
	return nil
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }
func isDigit(r rune) bool  { return r >= '0' && r <= '9' }
