package auth

import (
	"fmt"
	"slices"

	"github.com/chaindock/chaindock/internal/store"
)

// Roles a user has in an organization.
const (
	RoleAdmin   = "admin"
	RoleMember  = "member"
	RoleAuditor = "auditor"
)

// Roles lists the organization roles.
var Roles = []string{RoleAdmin, RoleMember, RoleAuditor}

// Principal kinds.
const (
	KindAdminToken = "admin-token"
	KindUser       = "user"
	KindAPIKey     = "apikey"
)

// Principal is who a request comes from.
type Principal struct {
	Kind          string
	Name          string
	PlatformAdmin bool
	// Roles maps an organization to the user's role in it.
	Roles map[string]string
	// Key is set for API keys.
	Key *store.APIKey
}

// Actor names the principal in the audit log.
func (p *Principal) Actor() string {
	if p == nil {
		return "anonymous"
	}
	return p.Kind + ":" + p.Name
}

// Orgs lists the organizations the principal belongs to.
func (p *Principal) Orgs() []string {
	if p.Key != nil {
		return []string{p.Key.Org}
	}
	out := make([]string, 0, len(p.Roles))
	for o := range p.Roles {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}

// Action is something a principal asks to do.
type Action string

// Actions. API keys may be given the network ones.
const (
	NetworkRead     Action = "network.read"
	NetworkWrite    Action = "network.write"
	NodeRead        Action = "node.read"
	OrgRead         Action = "org.read"
	OrgManage       Action = "org.manage"
	APIKeyManage    Action = "apikey.manage"
	AuditRead       Action = "audit.read"
	ConsortiumRead  Action = "consortium.read"
	ConsortiumOwn   Action = "consortium.manage"
	InvitationReply Action = "invitation.reply"
	ConsortiumLeave Action = "consortium.leave"
	PlatformManage  Action = "platform.manage"
	// LedgerRead reads a network's blocks and transactions and queries its
	// application; LedgerSubmit sends it transactions.
	LedgerRead   Action = "ledger.read"
	LedgerSubmit Action = "ledger.submit"
	// PackageRead reads an organization's packages in the contract store;
	// PackageWrite uploads and deletes them. ContractDeploy deploys,
	// upgrades and removes contracts on a network.
	PackageRead    Action = "package.read"
	PackageWrite   Action = "package.write"
	ContractDeploy Action = "contract.deploy"
)

// KeyActions are the actions an API key may be scoped to.
var KeyActions = []Action{NetworkRead, NetworkWrite, NodeRead, LedgerRead, LedgerSubmit, PackageRead, PackageWrite, ContractDeploy}

// rule says which roles of which organizations allow an action.
type rule struct {
	roles []string
	// members: a role in any member organization of the resource (a
	// consortium network's or consortium's members) is enough; otherwise
	// only a role in the owning organization counts.
	members bool
}

// rules is the permission matrix. An action missing here is for platform
// administrators only.
var rules = map[Action]rule{
	NetworkRead:     {roles: Roles, members: true},
	NetworkWrite:    {roles: []string{RoleAdmin, RoleMember}},
	NodeRead:        {roles: Roles},
	OrgRead:         {roles: Roles},
	OrgManage:       {roles: []string{RoleAdmin}},
	APIKeyManage:    {roles: []string{RoleAdmin}},
	AuditRead:       {roles: []string{RoleAdmin, RoleAuditor}},
	ConsortiumRead:  {roles: Roles, members: true},
	ConsortiumOwn:   {roles: []string{RoleAdmin}},
	InvitationReply: {roles: []string{RoleAdmin}},
	ConsortiumLeave: {roles: []string{RoleAdmin}},
	LedgerRead:      {roles: Roles, members: true},
	LedgerSubmit:    {roles: []string{RoleAdmin, RoleMember}, members: true},
	PackageRead:     {roles: Roles},
	PackageWrite:    {roles: []string{RoleAdmin, RoleMember}},
	ContractDeploy:  {roles: []string{RoleAdmin, RoleMember}},
}

// Scope is what an action is done to: the organization that owns it, the
// organizations that share it, and for networks its name.
type Scope struct {
	Org     string
	Members []string
	Network string
}

// Allow decides whether p may do action on scope. Everything not allowed
// by a rule is denied.
func Allow(p *Principal, action Action, scope Scope) error {
	if p == nil {
		return fmt.Errorf("%w: not authenticated", ErrDenied)
	}
	if p.PlatformAdmin {
		return nil
	}
	r, ok := rules[action]
	if !ok {
		return fmt.Errorf("%w: %s is for platform administrators", ErrDenied, action)
	}
	orgs := []string{scope.Org}
	if r.members {
		orgs = append(orgs, scope.Members...)
	}
	if p.Key != nil {
		k := p.Key
		switch {
		case !slices.Contains(k.Actions, string(action)):
			return fmt.Errorf("%w: API key %s is not scoped to %s", ErrDenied, k.ID, action)
		case !slices.Contains(orgs, k.Org) || scope.Org == "" && !r.members:
			return fmt.Errorf("%w: API key %s belongs to organization %s", ErrDenied, k.ID, k.Org)
		case len(k.Networks) > 0 && !slices.Contains(k.Networks, scope.Network):
			return fmt.Errorf("%w: API key %s is not scoped to network %q", ErrDenied, k.ID, scope.Network)
		}
		return nil
	}
	for _, o := range orgs {
		if o == "" {
			continue
		}
		if role, ok := p.Roles[o]; ok && slices.Contains(r.roles, role) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s needs the role %v in organization %s", ErrDenied, action, r.roles, scope.Org)
}

// Sees reports whether p may know that a resource of scope exists; what it
// may not see answers 404, not 403, so that names do not leak.
func Sees(p *Principal, action Action, scope Scope) bool {
	return Allow(p, action, scope) == nil
}
