package fabric

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hyperledger/fabric-config/configtx"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
)

// Bootstrap implements chain.Bootstrapper: it joins a running orderer or
// peer to the network's channels (an orderer to every one, a peer to its
// organisation's), and reports whether it is a member of all. An orderer
// is one of a channel once its channel participation API lists the
// channel and the channel's Raft has a leader that hears from a majority
// of the consenters, so that a network Running can order; a peer once it
// lists the channel among its own and, when it is the one to set them,
// its organisation's anchor peers are in the channel's configuration (see
// anchor).
func (d *Driver) Bootstrap(ctx context.Context, n *apis.Network, plan *chain.Plan, node chain.PlannedNode) (bool, error) {
	admin, err := loadAdmin(plan, node.Organization)
	if err != nil {
		return false, err
	}
	channels := channelsOf(n)
	if node.Role != apis.RoleValidator {
		channels = channelsOfOrg(n, node.Organization)
	}
	// One channel at a time: the next is asked on a later call, so that
	// a call is bounded whatever the number of channels.
	ctx, cancel := context.WithTimeout(ctx, admitWait)
	defer cancel()
	for _, c := range channels {
		block := plan.Artifact(BlockPath(c.name))
		if block == nil {
			return false, fmt.Errorf("the plan has no genesis block of channel %s", c.name)
		}
		var member bool
		if node.Role == apis.RoleValidator {
			member, err = d.joinOrderer(ctx, node, admin, c.name, block)
		} else if member, err = joinPeer(ctx, node, admin, c.name, block); member && err == nil {
			member, err = anchor(ctx, n, plan, c, node)
		}
		if err != nil || !member {
			return false, err
		}
	}
	return true, nil
}

// admin is an organisation's admin: its signing identity, and the TLS
// client certificate and CA it dials its organisation's nodes with.
type admin struct {
	signer  configtx.SigningIdentity
	certPEM []byte
	tls     tls.Certificate
	roots   *x509.CertPool
}

func loadAdmin(plan *chain.Plan, org string) (*admin, error) {
	get := func(p string) ([]byte, error) {
		b := plan.Artifact(orgPath(org, p))
		if b == nil {
			return nil, fmt.Errorf("the plan has no %s of organisation %s", p, org)
		}
		return b, nil
	}
	var files [5][]byte
	for i, p := range []string{
		artAdminMSP + "/" + pki.MSPSignCert, artAdminMSP + "/" + pki.MSPKey,
		artAdminTLS + "/" + pki.TLSCert, artAdminTLS + "/" + pki.TLSKey, artAdminTLS + "/" + pki.TLSCACert,
	} {
		b, err := get(p)
		if err != nil {
			return nil, err
		}
		files[i] = b
	}
	cert, err := pki.ParseCertPEM(files[0])
	if err != nil {
		return nil, fmt.Errorf("admin of %s: %w", org, err)
	}
	key, err := pki.ParseKeyPEM(files[1])
	if err != nil {
		return nil, fmt.Errorf("admin of %s: %w", org, err)
	}
	pair, err := tls.X509KeyPair(files[2], files[3])
	if err != nil {
		return nil, fmt.Errorf("admin TLS of %s: %w", org, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(files[4]) {
		return nil, fmt.Errorf("TLS CA of %s: no certificate", org)
	}
	return &admin{
		signer:  configtx.SigningIdentity{Certificate: cert, PrivateKey: key, MSPID: MSPID(org)},
		certPEM: files[0],
		tls:     pair,
		roots:   roots,
	}, nil
}

func (a *admin) tlsConfig(host string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      a.roots,
		Certificates: []tls.Certificate{a.tls},
		ServerName:   host,
	}
}

// participationPath is the orderer's channel participation API.
const participationPath = "/participation/v1/channels"

// channelInfo is what the participation API says of a channel.
type channelInfo struct {
	Name              string `json:"name"`
	Status            string `json:"status"`
	ConsensusRelation string `json:"consensusRelation"`
	Height            uint64 `json:"height"`
}

// joinOrderer joins an orderer to the channel with its genesis block,
// unless it has joined already.
func (d *Driver) joinOrderer(ctx context.Context, node chain.PlannedNode, a *admin, ch string, block []byte) (bool, error) {
	base, err := url.Parse(node.Endpoints[PortAdmin])
	if err != nil || base.Host == "" {
		return false, fmt.Errorf("%s has no admin endpoint", node.Name)
	}
	c := &http.Client{
		Timeout:   10 * time.Second,
		Transport: chain.Transport(&http.Transport{TLSClientConfig: a.tlsConfig(base.Hostname())}),
	}
	defer c.CloseIdleConnections()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.JoinPath(participationPath, ch).String(), nil)
	if err != nil {
		return false, err
	}
	info, status, err := participation(c, req)
	switch {
	case err != nil:
		return false, fmt.Errorf("%s: list channel %s: %w", node.Name, ch, err)
	case status == http.StatusOK && joined(info):
		ready, err := d.raftReady(ctx, node, ch)
		if err != nil {
			return false, fmt.Errorf("%s: Raft of channel %s: %w", node.Name, ch, err)
		}
		return ready, nil
	case status == http.StatusOK && info.Status == "failed":
		// Onboarding failed: the orderer could not pull the channel's
		// blocks from the others.
		return false, fmt.Errorf("%s: channel %s is %s (%s); see the orderer's log", node.Name, ch, info.Status, info.ConsensusRelation)
	case status == http.StatusOK:
		return false, nil
	case status != http.StatusNotFound:
		return false, fmt.Errorf("%s: list channel %s: HTTP %d", node.Name, ch, status)
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("config-block", ch+".block")
	if err != nil {
		return false, err
	}
	if _, err := part.Write(block); err != nil {
		return false, err
	}
	if err := mw.Close(); err != nil {
		return false, err
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, base.JoinPath(participationPath).String(), &body)
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	_, status, err = participation(c, req)
	switch {
	case err != nil:
		return false, fmt.Errorf("%s: join channel %s: %w", node.Name, ch, err)
	case status == http.StatusCreated:
		// Its Raft is looked at on the next call: it has just begun.
		return false, nil
	default:
		return false, fmt.Errorf("%s: join channel %s: HTTP %d", node.Name, ch, status)
	}
}

// joined reports whether an orderer serves the channel: a consenter of a
// channel that runs, or one still fetching its blocks.
func joined(info channelInfo) bool {
	return info.Status == "active" || info.Status == "onboarding"
}

// participation sends req and decodes the channel it answers with; an
// error answer's message is returned as an error.
func participation(c *http.Client, req *http.Request) (channelInfo, int, error) {
	resp, err := c.Do(req)
	if err != nil {
		return channelInfo{}, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return channelInfo{}, resp.StatusCode, err
	}
	var info channelInfo
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated:
		if err := json.Unmarshal(b, &info); err != nil {
			return info, resp.StatusCode, fmt.Errorf("decode answer %q: %w", b, err)
		}
	case http.StatusNotFound:
	default:
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return info, resp.StatusCode, fmt.Errorf("HTTP %d: %s", resp.StatusCode, e.Error)
		}
		return info, resp.StatusCode, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return info, resp.StatusCode, nil
}

// joinPeer joins a peer to the channel with its genesis block, unless it
// has joined already: two proposals to the peer's configuration system
// chaincode (CSCC), signed by its organisation's admin.
func joinPeer(ctx context.Context, node chain.PlannedNode, a *admin, ch string, block []byte) (bool, error) {
	conn, err := dialPeer(node, a)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	endorser := pb.NewEndorserClient(conn)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	resp, err := invoke(ctx, endorser, a, "cscc", "GetChannels")
	if err != nil {
		return false, fmt.Errorf("%s: list channels: %w", node.Name, err)
	}
	var list pb.ChannelQueryResponse
	if err := proto.Unmarshal(resp.GetResponse().GetPayload(), &list); err != nil {
		return false, fmt.Errorf("%s: list channels: %w", node.Name, err)
	}
	for _, c := range list.GetChannels() {
		if c.GetChannelId() == ch {
			return true, nil
		}
	}
	if _, err := invoke(ctx, endorser, a, "cscc", "JoinChain", block); err != nil {
		return false, fmt.Errorf("%s: join channel %s: %w", node.Name, ch, err)
	}
	return true, nil
}
