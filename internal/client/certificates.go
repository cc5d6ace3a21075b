package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
)

func certificatesPath(network string) string {
	return "/api/v1/networks/" + url.PathEscape(network) + "/certificates"
}

// Certificates lists the certificates of a Fabric network the platform
// renews.
func (c *Client) Certificates(ctx context.Context, network string) (*api.CertificateList, error) {
	var out api.CertificateList
	return &out, c.Do(ctx, http.MethodGet, certificatesPath(network), nil, "", &out)
}

// RenewCertificates asks for a Fabric network's certificates issued
// before at to be renewed once at has come; the zero time means now.
func (c *Client) RenewCertificates(ctx context.Context, network string, at time.Time) (*apis.Network, error) {
	var req api.RenewCertificatesRequest
	if !at.IsZero() {
		req.At = &at
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out apis.Network
	return &out, c.Do(ctx, http.MethodPost, certificatesPath(network)+"/renew", body, "application/json", &out)
}
