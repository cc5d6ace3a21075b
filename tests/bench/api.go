package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/store/storetest"
	"github.com/chaindock/chaindock/pkg/aksk"
	"github.com/chaindock/chaindock/tests/framework"
)

const (
	benchOrgs     = 100
	benchNetworks = 1000
	benchGets     = 3000
	benchApplies  = 300
	concurrency   = 8
)

// latency is one API figure: per-request latency percentiles and throughput
// at a fixed concurrency.
type latency struct {
	Metric  string  `json:"metric"`
	Store   string  `json:"store"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
	PerSec  float64 `json:"per_s"`
	Count   int     `json:"requests"`
	Workers int     `json:"concurrency"`
	Note    string  `json:"note"`
}

func emitLatency(l latency) {
	b, _ := json.Marshal(l)
	fmt.Println(string(b))
}

// measure runs n requests over the workers and reports their latencies.
func measure(n int, do func(i int) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for i := range next {
				t0 := time.Now()
				if err := do(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return lat, time.Since(start), first
}

func pct(lat []time.Duration, p float64) float64 {
	s := slices.Clone(lat)
	slices.Sort(s)
	return round(float64(s[int(p*float64(len(s)-1))].Microseconds()) / 1000)
}

func request(ctx context.Context, c *http.Client, method, url, ctype string, body []byte, want int) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d: %s", method, url, resp.StatusCode, b)
	}
	return nil
}

// bearerRT sends a bearer token on base (nil: http.DefaultTransport).
type bearerRT struct {
	token string
	base  http.RoundTripper
}

func (b bearerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	if b.base != nil {
		return b.base.RoundTrip(r)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// benchAPI measures the API of an API-only server with benchOrgs
// organizations and benchNetworks networks in its store.
func benchAPI(ctx context.Context, binDir, storeName, dsn string) error {
	tmp, err := os.MkdirTemp("", "chaindock-bench-api")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	args := []string{"--controller=false", "--rate-limit", "0", "--log-level", "warn"}
	if dsn != "" {
		args = append(args, "--store-dsn", dsn)
	}
	srv, err := framework.StartServer(ctx, binDir, filepath.Join(tmp, "data"), args...)
	if err != nil {
		return err
	}
	defer srv.Stop()
	tok, err := os.ReadFile(filepath.Join(tmp, "data", "admin.token"))
	if err != nil {
		return err
	}
	http.DefaultTransport.(*http.Transport).MaxIdleConnsPerHost = concurrency * 2
	admin := &http.Client{Transport: bearerRT{token: strings.TrimSpace(string(tok))}}
	base := srv.Addr + "/api/v1"
	post := func(c *http.Client, path, body string, want int) error {
		return request(ctx, c, "POST", base+path, "application/json", []byte(body), want)
	}
	if err := post(admin, "/users", `{"name":"alice","password":"a long benchmark password"}`, 201); err != nil {
		return err
	}
	for i := range benchOrgs {
		firstAdmin := ""
		if i == 7 {
			firstAdmin = `,"admin":"alice"`
		}
		if err := post(admin, "/organizations", fmt.Sprintf(`{"name":"org-%03d"%s}`, i, firstAdmin), 201); err != nil {
			return err
		}
	}
	spec := func(name string, org int) []byte {
		return fmt.Appendf(nil, "apiVersion: chaindock/v1\nkind: Network\nmetadata: {name: %s, owner: org-%03d}\nspec: {chain: cometbft, runtime: process, validators: 4}\n", name, org)
	}
	if _, _, err := measure(benchNetworks, func(i int) error {
		return request(ctx, admin, "POST", base+"/networks", "application/yaml", spec(fmt.Sprintf("net-%04d", i), i%benchOrgs), 201)
	}); err != nil {
		return err
	}

	// A user of org-007 reads one of its networks.
	var lr api.LoginResponse
	resp, err := http.Post(base+"/login", "application/json", strings.NewReader(`{"user":"alice","password":"a long benchmark password"}`))
	if err != nil {
		return err
	}
	err = json.NewDecoder(resp.Body).Decode(&lr)
	resp.Body.Close()
	if err != nil {
		return err
	}
	user := &http.Client{Transport: bearerRT{token: lr.Token}}
	lat, took, err := measure(benchGets, func(i int) error {
		return request(ctx, user, "GET", fmt.Sprintf("%s/networks/net-%04d", base, 7+100*(i%10)), "", nil, 200)
	})
	if err != nil {
		return err
	}
	emitLatency(latency{Metric: "api_get_network", Store: storeName, P50ms: pct(lat, 0.5), P99ms: pct(lat, 0.99), PerSec: round(float64(len(lat)) / took.Seconds()), Count: len(lat), Workers: concurrency,
		Note: fmt.Sprintf("GET one network as a logged-in organization user (session token), %d organizations and %d networks stored", benchOrgs, benchNetworks)})

	// The same through an AK/SK-signed application request.
	var key api.APIKey
	kresp, err := func() ([]byte, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/organizations/org-007/apikeys", strings.NewReader(`{"actions":["network.read"]}`))
		req.Header.Set("Content-Type", "application/json")
		r, err := user.Do(req)
		if err != nil {
			return nil, err
		}
		defer r.Body.Close()
		return io.ReadAll(r.Body)
	}()
	if err != nil {
		return err
	}
	if err := json.Unmarshal(kresp, &key); err != nil || key.Secret == "" {
		return fmt.Errorf("create API key: %w (%s)", err, kresp)
	}
	signed := &http.Client{Transport: &aksk.Transport{AccessKey: key.ID, Secret: key.Secret}}
	lat, took, err = measure(benchGets, func(i int) error {
		return request(ctx, signed, "GET", fmt.Sprintf("%s/networks/net-%04d", base, 7+100*(i%10)), "", nil, 200)
	})
	if err != nil {
		return err
	}
	emitLatency(latency{Metric: "api_get_network_signed", Store: storeName, P50ms: pct(lat, 0.5), P99ms: pct(lat, 0.99), PerSec: round(float64(len(lat)) / took.Seconds()), Count: len(lat), Workers: concurrency,
		Note: "the same GET signed with an API key (signature, time window and a nonce written to the store per request)"})

	lat, took, err = measure(benchApplies, func(i int) error {
		return request(ctx, user, "POST", base+"/networks", "application/yaml", spec(fmt.Sprintf("new-%04d", i), 7), 201)
	})
	if err != nil {
		return err
	}
	emitLatency(latency{Metric: "api_apply_network", Store: storeName, P50ms: pct(lat, 0.5), P99ms: pct(lat, 0.99), PerSec: round(float64(len(lat)) / took.Seconds()), Count: len(lat), Workers: concurrency,
		Note: "POST a 4-validator network spec as an organization user: validate, check ownership, store, event, audit entry"})
	return nil
}

// benchAPIStores runs benchAPI on SQLite and, when a server is at hand, on
// PostgreSQL.
func benchAPIStores(ctx context.Context, binDir string) error {
	if err := benchAPI(ctx, binDir, "sqlite", ""); err != nil {
		return fmt.Errorf("api on sqlite: %w", err)
	}
	admin := os.Getenv(storetest.EnvPostgresDSN)
	if admin == "" {
		fmt.Fprintln(os.Stderr, "bench: "+storetest.EnvPostgresDSN+" is not set, so the API figures on PostgreSQL are left out (make bench sets it)")
		return nil
	}
	dsn, drop, err := storetest.NewPostgresDatabase(ctx, admin)
	if err != nil {
		return err
	}
	defer drop()
	if err := benchAPI(ctx, binDir, "postgres", dsn); err != nil {
		return fmt.Errorf("api on postgres: %w", err)
	}
	return nil
}
