// Package client is a Go client for ChainDock's REST API.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
)

// Client talks to one server.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client for the server at base ("http://127.0.0.1:7400").
func New(base, token string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{}}
}

// Error is a problem the server reported.
type Error struct {
	api.Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (HTTP %d)", e.Title, e.Status)
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	for _, fe := range e.Errors {
		fmt.Fprintf(&b, "\n  %s", fe.Error())
	}
	return b.String()
}

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// IsAlreadyExists reports whether err says the name is taken.
func IsAlreadyExists(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Type == api.ProblemExists
}

// Do sends a request and decodes the JSON answer into out (nil: discard
// it); an error answer is returned as *Error.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, contentType string, out any) error {
	resp, err := c.send(ctx, method, path, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, body []byte, contentType string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach the chaindock server at %s: %w", c.base, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		var p api.Problem
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &p) != nil || p.Status == 0 {
			p = api.Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Detail: strings.TrimSpace(string(b))}
		}
		return nil, &Error{p}
	}
	return resp, nil
}

// CreateNetwork sends a network spec (YAML or JSON).
func (c *Client) CreateNetwork(ctx context.Context, spec []byte) (*apis.Network, error) {
	var n apis.Network
	return &n, c.Do(ctx, http.MethodPost, "/api/v1/networks", spec, "application/yaml", &n)
}

// GetNetwork returns a network with its status.
func (c *Client) GetNetwork(ctx context.Context, name string) (*apis.Network, error) {
	var n apis.Network
	return &n, c.Do(ctx, http.MethodGet, "/api/v1/networks/"+url.PathEscape(name), nil, "", &n)
}

// ListNetworks returns every network.
func (c *Client) ListNetworks(ctx context.Context) ([]*apis.Network, error) {
	var l api.NetworkList
	return l.Items, c.Do(ctx, http.MethodGet, "/api/v1/networks", nil, "", &l)
}

// DeleteNetwork asks for a network to be deleted.
func (c *Client) DeleteNetwork(ctx context.Context, name string) (*apis.Network, error) {
	var n apis.Network
	return &n, c.Do(ctx, http.MethodDelete, "/api/v1/networks/"+url.PathEscape(name), nil, "", &n)
}

// NetworkEvents returns a network's events after the event with id after.
func (c *Client) NetworkEvents(ctx context.Context, name string, after int64) (api.EventList, error) {
	var l api.EventList
	return l, c.Do(ctx, http.MethodGet, "/api/v1/networks/"+url.PathEscape(name)+"/events?after="+strconv.FormatInt(after, 10), nil, "", &l)
}

// Logs copies a node's output to w; with follow until ctx ends.
func (c *Client) Logs(ctx context.Context, network, node string, tail int, follow bool, w io.Writer) error {
	q := url.Values{}
	if tail > 0 {
		q.Set("tail", strconv.Itoa(tail))
	}
	if follow {
		q.Set("follow", "true")
	}
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/networks/"+url.PathEscape(network)+"/nodes/"+url.PathEscape(node)+"/logs?"+q.Encode(), nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Raw sends a request and returns the response, for endpoints without a
// typed method. The caller closes the body.
func (c *Client) Raw(ctx context.Context, method, path string, body []byte, contentType string) (*http.Response, error) {
	return c.send(ctx, method, path, body, contentType)
}
