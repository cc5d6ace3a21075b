package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/gateway"
	"github.com/chaindock/chaindock/internal/store"
	"github.com/chaindock/chaindock/pkg/apptx"
)

// Problem types of the explorer and the gateway.
const (
	ProblemTxRefused   = "urn:chaindock:problem:transaction-refused"
	ProblemUnavailable = "urn:chaindock:problem:network-unavailable"
	ProblemTimeout     = "urn:chaindock:problem:timeout"
)

// MaxTxBytes bounds a submitted transaction.
const MaxTxBytes = 1 << 20

// Block is a block as the explorer shows it.
type Block struct {
	Height   int64     `json:"height"`
	Hash     string    `json:"hash"`
	Time     time.Time `json:"time"`
	Proposer string    `json:"proposer"`
	AppHash  string    `json:"appHash"`
	NumTxs   int       `json:"numTxs"`
}

// Tx is a transaction as the explorer shows it: Body holds the
// transaction itself when it is JSON, Data (base64) when it is not.
type Tx struct {
	Hash   string          `json:"hash"`
	Height int64           `json:"height"`
	Index  int             `json:"index"`
	Time   time.Time       `json:"time"`
	Code   uint32          `json:"code"`
	Log    string          `json:"log,omitempty"`
	Type   string          `json:"type,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
	Data   []byte          `json:"data,omitempty"`
	Events []store.Event   `json:"events,omitempty"`
}

// BlockList is a page of blocks, newest first; Next continues it.
type BlockList struct {
	Items []Block `json:"items"`
	Next  string  `json:"next,omitempty"`
}

// TxList is a page of transactions, newest first; Next continues it.
type TxList struct {
	Items []Tx   `json:"items"`
	Next  string `json:"next,omitempty"`
}

// SearchResult is what the explorer's search box found.
type SearchResult struct {
	Kind  string `json:"kind"` // "block" or "transaction"
	Block *Block `json:"block,omitempty"`
	Tx    *Tx    `json:"transaction,omitempty"`
}

// ExplorerStatus is how far the index of a network's ledger is: its
// shared one, or Channel's.
type ExplorerStatus struct {
	Channel       string `json:"channel,omitempty"`
	IndexedHeight int64  `json:"indexedHeight"`
	ChainHeight   int64  `json:"chainHeight"`
	Lag           int64  `json:"lag"`
}

// QueryAnswer is an application's answer to a query.
type QueryAnswer struct {
	Code   uint32          `json:"code"`
	Log    string          `json:"log,omitempty"`
	Height int64           `json:"height"`
	Node   string          `json:"node"`
	Value  json.RawMessage `json:"value,omitempty"`
	Data   []byte          `json:"data,omitempty"`
}

func toBlock(b *store.Block) Block {
	return Block{Height: b.Height, Hash: b.Hash, Time: b.Time.UTC(), Proposer: b.Proposer, AppHash: b.AppHash, NumTxs: b.NumTxs}
}

func toTx(t *store.Tx) Tx {
	out := Tx{Hash: t.Hash, Height: t.Height, Index: t.Index, Time: t.Time.UTC(), Code: t.Code, Log: t.Log, Type: t.Type, Events: t.Events}
	if json.Valid(t.Data) {
		out.Body = t.Data
	} else {
		out.Data = t.Data
	}
	return out
}

var hashPattern = regexp.MustCompile(`^[0-9A-Fa-f]{64}$`)

// bareHash is a hash as given, without the 0x that Ethereum's tools
// write before it.
func bareHash(s string) string {
	return strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
}

// ledgerNetwork loads the network in the path and checks action on it.
func (a *API) ledgerNetwork(w http.ResponseWriter, r *http.Request, action auth.Action) (*apis.Network, bool) {
	n, scope, ok := a.getStored(w, r)
	if !ok || !a.allow(w, r, action, scope) {
		return nil, false
	}
	return n, true
}

func pageLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	l, ok := intParam(w, r, "limit", 20, 1, 1000)
	return int(l), ok
}

func (a *API) listBlocks(w http.ResponseWriter, r *http.Request) {
	_, key, _, ok := a.explorerNetwork(w, r, auth.LedgerRead)
	if !ok {
		return
	}
	before, ok := intParam(w, r, "before", 0, 0, 1<<62)
	if !ok {
		return
	}
	limit, ok := pageLimit(w, r)
	if !ok {
		return
	}
	blocks, err := a.opts.Store.Blocks(r.Context(), key, before, limit)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	out := BlockList{Items: make([]Block, 0, len(blocks))}
	for i := range blocks {
		out.Items = append(out.Items, toBlock(&blocks[i]))
	}
	if len(blocks) == limit && blocks[len(blocks)-1].Height > 1 {
		out.Next = strconv.FormatInt(blocks[len(blocks)-1].Height, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

// getBlock answers a block by height or by hash.
func (a *API) getBlock(w http.ResponseWriter, r *http.Request) {
	_, key, _, ok := a.explorerNetwork(w, r, auth.LedgerRead)
	if !ok {
		return
	}
	id := bareHash(chi.URLParam(r, "block"))
	var b *store.Block
	var err error
	if h, perr := strconv.ParseInt(id, 10, 64); perr == nil && h > 0 {
		b, err = a.opts.Store.BlockByHeight(r.Context(), key, h)
	} else if hashPattern.MatchString(id) {
		b, err = a.opts.Store.BlockByHash(r.Context(), key, strings.ToUpper(id))
	} else {
		writeProblem(w, r, Problem{Type: ProblemBadParameter, Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("block %q is neither a height (a positive whole number) nor a hash (64 hex digits)", id)})
		return
	}
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	txs, err := a.opts.Store.Txs(r.Context(), key, b.Height, nil, 1000)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	out := struct {
		Block
		Txs []Tx `json:"transactions"`
	}{Block: toBlock(b), Txs: make([]Tx, 0, len(txs))}
	for i := len(txs) - 1; i >= 0; i-- { // in block order
		out.Txs = append(out.Txs, toTx(&txs[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// parseTxCursor reads "HEIGHT.INDEX".
func parseTxCursor(s string) (*store.TxCursor, error) {
	if s == "" {
		return nil, nil
	}
	h, i, ok := strings.Cut(s, ".")
	height, err1 := strconv.ParseInt(h, 10, 64)
	index, err2 := strconv.Atoi(i)
	if !ok || err1 != nil || err2 != nil || height < 1 || index < 0 {
		return nil, fmt.Errorf("query parameter before must be HEIGHT.INDEX as given in next, not %q", s)
	}
	return &store.TxCursor{Height: height, Index: index}, nil
}

func (a *API) listTxs(w http.ResponseWriter, r *http.Request) {
	_, key, _, ok := a.explorerNetwork(w, r, auth.LedgerRead)
	if !ok {
		return
	}
	before, err := parseTxCursor(r.URL.Query().Get("before"))
	if err != nil {
		writeProblem(w, r, Problem{Type: ProblemBadParameter, Status: http.StatusBadRequest, Detail: err.Error()})
		return
	}
	height, ok := intParam(w, r, "height", 0, 0, 1<<62)
	if !ok {
		return
	}
	limit, ok := pageLimit(w, r)
	if !ok {
		return
	}
	txs, err := a.opts.Store.Txs(r.Context(), key, height, before, limit)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	out := TxList{Items: make([]Tx, 0, len(txs))}
	for i := range txs {
		out.Items = append(out.Items, toTx(&txs[i]))
	}
	if len(txs) == limit {
		last := txs[len(txs)-1]
		out.Next = fmt.Sprintf("%d.%d", last.Height, last.Index)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getTx(w http.ResponseWriter, r *http.Request) {
	_, key, _, ok := a.explorerNetwork(w, r, auth.LedgerRead)
	if !ok {
		return
	}
	hash := bareHash(chi.URLParam(r, "hash"))
	if !hashPattern.MatchString(hash) {
		writeProblem(w, r, Problem{Type: ProblemBadParameter, Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("transaction hash %q is not 64 hex digits", chi.URLParam(r, "hash"))})
		return
	}
	t, err := a.opts.Store.TxByHash(r.Context(), key, strings.ToUpper(hash))
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toTx(t))
}

// search finds a block by height or hash, or a transaction by hash.
func (a *API) search(w http.ResponseWriter, r *http.Request) {
	n, uid, ch, ok := a.explorerNetwork(w, r, auth.LedgerRead)
	if !ok {
		return
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	q = bareHash(q)
	ctx := r.Context()
	if h, err := strconv.ParseInt(q, 10, 64); err == nil && h > 0 && len(q) < 20 {
		b, err := a.opts.Store.BlockByHeight(ctx, uid, h)
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		blk := toBlock(b)
		writeJSON(w, http.StatusOK, SearchResult{Kind: "block", Block: &blk})
		return
	}
	if !hashPattern.MatchString(q) {
		writeProblem(w, r, Problem{Type: ProblemBadParameter, Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("query parameter q must be a block height, a block hash or a transaction hash, not %q", q)})
		return
	}
	q = strings.ToUpper(q)
	if t, err := a.opts.Store.TxByHash(ctx, uid, q); err == nil {
		tx := toTx(t)
		writeJSON(w, http.StatusOK, SearchResult{Kind: "transaction", Tx: &tx})
		return
	} else if !errors.Is(err, store.ErrNotFound) {
		a.storeError(w, r, err)
		return
	}
	b, err := a.opts.Store.BlockByHash(ctx, uid, q)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			where := "network " + n.Metadata.Name
			if ch != "" {
				where = "channel " + ch + " of " + where
			}
			notFoundProblem(w, r, fmt.Sprintf("no block or transaction %s in %s (indexed up to the explorer's height)", q, where))
			return
		}
		a.storeError(w, r, err)
		return
	}
	blk := toBlock(b)
	writeJSON(w, http.StatusOK, SearchResult{Kind: "block", Block: &blk})
}

func (a *API) explorerStatus(w http.ResponseWriter, r *http.Request) {
	n, key, ch, ok := a.explorerNetwork(w, r, auth.LedgerRead)
	if !ok {
		return
	}
	h, err := a.opts.Store.IndexedHeight(r.Context(), key)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	top := n.Status.Height
	if ch != "" {
		if top, err = a.channelHeight(r.Context(), n, ch); err != nil {
			writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable,
				Detail: fmt.Sprintf("height of channel %s of network %s: %v", ch, n.Metadata.Name, err)})
			return
		}
	}
	writeJSON(w, http.StatusOK, ExplorerStatus{Channel: ch, IndexedHeight: h, ChainHeight: top, Lag: max(0, top-h)})
}

// reindex drops the index of a network's ledger (its shared one, or a
// channel's); the indexer builds it again from the first block.
func (a *API) reindex(w http.ResponseWriter, r *http.Request) {
	n, key, ch, ok := a.explorerNetwork(w, r, auth.NetworkWrite)
	if !ok {
		return
	}
	if err := a.opts.Store.ForgetChain(r.Context(), key); err != nil {
		a.storeError(w, r, err)
		return
	}
	st := ExplorerStatus{Channel: ch, ChainHeight: n.Status.Height, Lag: n.Status.Height}
	if ch != "" {
		// The channel's height is not in the network's status.
		st.ChainHeight, st.Lag = 0, 0
	}
	writeJSON(w, http.StatusAccepted, st)
}

// submitTx hands an application's signed transaction to the network.
// signsFor says which of a network's organisations the platform may sign
// as for a caller, on chains whose organisations' identities it holds
// (Fabric): the caller's own; all of them for the members of the owner
// of a network no consortium shares, which runs them all; any for a
// platform administrator.
func signsFor(p *auth.Principal, n *apis.Network) func(org string) bool {
	return func(org string) bool {
		if p == nil {
			return false
		}
		if p.PlatformAdmin {
			return true
		}
		orgs := p.Orgs()
		return slices.Contains(orgs, org) || n.Spec.Consortium == "" && slices.Contains(orgs, n.Metadata.Owner)
	}
}

func (a *API) submitTx(w http.ResponseWriter, r *http.Request) {
	n, ok := a.ledgerNetwork(w, r, auth.LedgerSubmit)
	if !ok {
		return
	}
	wait := r.URL.Query().Get("wait")
	if wait != "" && wait != "commit" && wait != "none" {
		writeProblem(w, r, Problem{Type: ProblemBadParameter, Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("query parameter wait must be commit (the default) or none, not %q", wait)})
		return
	}
	if !a.gatewayLimit.allow(principalFrom(r.Context()).Actor() + "\x00" + n.Metadata.Name) {
		writeProblem(w, r, Problem{Type: ProblemRateLimited, Status: http.StatusTooManyRequests,
			Detail: fmt.Sprintf("too many transactions for network %s from this caller; slow down", n.Metadata.Name)})
		return
	}
	tx, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxTxBytes))
	if err != nil {
		writeProblem(w, r, Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("a transaction may have at most %d bytes", MaxTxBytes)})
		return
	}
	if len(tx) == 0 {
		writeProblem(w, r, Problem{Type: ProblemMalformed, Status: http.StatusBadRequest, Detail: "the body must be the signed transaction; it is empty"})
		return
	}
	if a.contractRemoved(w, r, n, tx) {
		return
	}
	ctx := chain.WithSignsFor(r.Context(), signsFor(principalFrom(r.Context()), n))
	rc, err := a.gateway.Submit(ctx, n, tx, wait != "none")
	if ai := auditFrom(r.Context()); ai != nil && rc.Hash != "" {
		ai.detail = "transaction " + rc.Hash
	}
	var rej *gateway.RejectedError
	switch {
	case err == nil && rc.Committed:
		writeJSON(w, http.StatusOK, rc)
	case err == nil:
		writeJSON(w, http.StatusAccepted, rc)
	case errors.As(err, &rej):
		writeProblem(w, r, Problem{Type: ProblemTxRefused, Status: http.StatusUnprocessableEntity, Detail: err.Error(),
			Refusal: &Refusal{Hash: rej.Hash, Code: rej.Code, Log: rej.Log, Height: rej.Height}})
	default:
		a.gatewayError(w, r, err)
	}
}

func (a *API) gatewayError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, gateway.ErrNotSupported):
		writeProblem(w, r, Problem{Type: ProblemNotAcceptable, Status: http.StatusNotImplemented, Detail: err.Error()})
	case errors.Is(err, chain.ErrMalformed):
		writeProblem(w, r, Problem{Type: ProblemMalformed, Status: http.StatusBadRequest, Detail: err.Error()})
	case errors.Is(err, chain.ErrNotPermitted):
		writeProblem(w, r, Problem{Type: ProblemForbidden, Status: http.StatusForbidden, Detail: err.Error()})
	case errors.Is(err, gateway.ErrUnavailable):
		writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable, Detail: err.Error()})
	case errors.Is(err, r.Context().Err()) || strings.Contains(err.Error(), "deadline exceeded"):
		writeProblem(w, r, Problem{Type: ProblemTimeout, Status: http.StatusGatewayTimeout, Detail: err.Error()})
	default:
		a.opts.Log.Error("gateway", "path", r.URL.Path, "err", err)
		writeProblem(w, r, Problem{Type: ProblemInternal, Status: http.StatusInternalServerError, Detail: err.Error()})
	}
}

// queryApp asks the network's application: path and data as the
// application defines them.
func (a *API) queryApp(w http.ResponseWriter, r *http.Request) {
	n, ok := a.ledgerNetwork(w, r, auth.LedgerRead)
	if !ok {
		return
	}
	path := r.URL.Query().Get("path")
	if !strings.HasPrefix(path, "/") || len(path) > 128 {
		writeProblem(w, r, Problem{Type: ProblemBadParameter, Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("query parameter path must start with / and have at most 128 characters, not %q", path)})
		return
	}
	minHeight, ok := intParam(w, r, "minHeight", 0, 0, 1<<62)
	if !ok {
		return
	}
	data := r.URL.Query().Get("data")
	if n.Spec.Chain == apis.ChainFabric && strings.HasPrefix(strings.TrimSpace(data), "{") {
		// Its object form is for transient data, which a URL must not
		// carry: proxies and access logs keep URLs.
		writeProblem(w, r, Problem{Type: ProblemBadParameter, Status: http.StatusBadRequest,
			Detail: "query parameter data must be the JSON array of the function's arguments; a query with transient data goes in the body of POST .../query"})
		return
	}
	a.answerQuery(w, r, n, path, []byte(data), minHeight)
}

// NotarisationProof is a document's notarisation, proved against a block
// header signed by the network's validators.
type NotarisationProof struct {
	Record *apptx.NotaryRecord `json:"record"`
	Proof  *apptx.NotaryProof  `json:"proof"`
	// HeaderHeight is the block whose header carries AppHash: the one
	// after the block that recorded the document.
	HeaderHeight int64  `json:"headerHeight"`
	AppHash      string `json:"appHash"`
	Verified     bool   `json:"verified"`
	Node         string `json:"node"`
}

// notaryProof answers a document's record with its proof, checked here
// against the header of the next block after verifying that header's
// commit signatures; a client may check the same again with
// apptx.VerifyProof.
func (a *API) notaryProof(w http.ResponseWriter, r *http.Request) {
	n, ok := a.ledgerNetwork(w, r, auth.LedgerRead)
	if !ok {
		return
	}
	doc := strings.ToLower(chi.URLParam(r, "hash"))
	if !hashPattern.MatchString(doc) {
		writeProblem(w, r, Problem{Type: ProblemBadParameter, Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("document hash %q is not 64 hex digits (a SHA-256)", doc)})
		return
	}
	q, _ := json.Marshal(map[string]string{"hash": doc})
	res, node, err := a.gateway.Query(r.Context(), n, "/notary/proof", q, 0)
	if err != nil {
		a.gatewayError(w, r, err)
		return
	}
	switch {
	case res.Code == apptx.CodeNotFound:
		notFoundProblem(w, r, fmt.Sprintf("document %s is not notarised in network %s:", doc, n.Metadata.Name))
		return
	case res.Code != 0:
		writeProblem(w, r, Problem{Type: ProblemNotAcceptable, Status: http.StatusNotImplemented,
			Detail: fmt.Sprintf("network %s's application gives no notarisation proofs (code %d): %s", n.Metadata.Name, res.Code, res.Log)})
		return
	}
	var p apptx.NotaryProof
	if err := json.Unmarshal(res.Value, &p); err != nil {
		a.gatewayError(w, r, fmt.Errorf("decode the proof from %s: %w", node, err))
		return
	}
	appHash, node, err := a.gateway.VerifiedAppHash(r.Context(), n, p.Height+1)
	if err != nil {
		a.gatewayError(w, r, err)
		return
	}
	out := NotarisationProof{Proof: &p, HeaderHeight: p.Height + 1, AppHash: fmt.Sprintf("%X", appHash), Node: node}
	if err := apptx.VerifyProof(&p, appHash); err != nil {
		writeProblem(w, r, Problem{Type: ProblemInternal, Status: http.StatusBadGateway,
			Detail: fmt.Sprintf("the proof of %s from %s does not verify against the signed header of block %d: %v", doc, node, p.Height+1, err)})
		return
	}
	out.Verified = true
	out.Record, _ = p.Record()
	writeJSON(w, http.StatusOK, out)
}
