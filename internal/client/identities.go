package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/chaindock/chaindock/internal/api"
)

func identitiesPath(network string) string {
	return "/api/v1/networks/" + url.PathEscape(network) + "/identities"
}

// EnrollIdentity enrols an application identity in a Fabric network. The
// answer carries the key the platform made, if it made one: it is not
// shown again.
func (c *Client) EnrollIdentity(ctx context.Context, network string, req api.IdentityRequest) (*api.Identity, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var id api.Identity
	return &id, c.Do(ctx, http.MethodPost, identitiesPath(network), body, "application/json", &id)
}

// ListIdentities lists a network's enrolled identities the caller may
// manage; org, when given, selects one organisation's.
func (c *Client) ListIdentities(ctx context.Context, network, org string) ([]api.Identity, error) {
	p := identitiesPath(network)
	if org != "" {
		p += "?" + url.Values{"organization": {org}}.Encode()
	}
	var l api.IdentityList
	return l.Items, c.Do(ctx, http.MethodGet, p, nil, "", &l)
}

// GetIdentity returns one enrolled identity, without its key.
func (c *Client) GetIdentity(ctx context.Context, network, org, name string) (*api.Identity, error) {
	var id api.Identity
	return &id, c.Do(ctx, http.MethodGet, identitiesPath(network)+"/"+url.PathEscape(org)+"/"+url.PathEscape(name), nil, "", &id)
}

// DeleteIdentity removes an enrolled identity, and its key, from the
// platform; with revoke, the server first revokes its certificate on the
// channel.
func (c *Client) DeleteIdentity(ctx context.Context, network, org, name string, revoke bool) error {
	p := identitiesPath(network) + "/" + url.PathEscape(org) + "/" + url.PathEscape(name)
	if !revoke {
		p += "?revoke=false"
	}
	return c.Do(ctx, http.MethodDelete, p, nil, "", nil)
}

// RenewIdentity issues an enrolled identity a new certificate (see
// api.RenewRequest).
func (c *Client) RenewIdentity(ctx context.Context, network, org, name string, req api.RenewRequest) (*api.Identity, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var id api.Identity
	return &id, c.Do(ctx, http.MethodPost, identitiesPath(network)+"/"+url.PathEscape(org)+"/"+url.PathEscape(name)+"/renew", body, "application/json", &id)
}
