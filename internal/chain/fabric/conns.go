package fabric

import (
	"crypto/sha256"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/chaindock/chaindock/internal/chain"
)

// connIdle is how long a pooled connection to a peer stays open unused.
const connIdle = 2 * time.Minute

// conns keeps the gRPC connections the gateway and the explorer make to
// peers, so that a call does not pay for a new TLS handshake. A
// connection is keyed by the peer's endpoint and the client certificate
// it was made with (an organisation admin's, which differs from one plan
// to another), is shared by concurrent calls (gRPC multiplexes them), and
// is closed once unused for connIdle.
type conns struct {
	// idle is connIdle unless set.
	idle    time.Duration
	mu      sync.Mutex
	m       map[connKey]*pooledConn
	janitor bool
}

type connKey struct {
	target string
	client [sha256.Size]byte
}

type pooledConn struct {
	conn     *grpc.ClientConn
	users    int
	lastUsed time.Time
	// evicted: out of the pool, closed by its last user.
	evicted bool
}

// get is a connection to node as admin a, and the function that gives it
// back once the caller is done with it.
func (p *conns) get(node chain.PlannedNode, a *admin) (*grpc.ClientConn, func(), error) {
	var cert []byte
	if len(a.tls.Certificate) > 0 {
		cert = a.tls.Certificate[0]
	}
	k := connKey{target: node.Endpoints[PortListen], client: sha256.Sum256(cert)}
	p.mu.Lock()
	defer p.mu.Unlock()
	pc, ok := p.m[k]
	if ok && pc.conn.GetState() == connectivity.TransientFailure {
		// The peer was unreachable: gRPC would wait out its reconnect
		// backoff (up to 2 minutes) before trying it again, where a new
		// connection tries at once, as a peer restarted by the
		// controller needs.
		delete(p.m, k)
		pc.evicted = true
		if pc.users == 0 {
			_ = pc.conn.Close()
		}
		ok = false
	}
	if !ok {
		conn, err := dialPeer(node, a)
		if err != nil {
			return nil, nil, err
		}
		pc = &pooledConn{conn: conn}
		if p.m == nil {
			p.m = map[connKey]*pooledConn{}
		}
		p.m[k] = pc
		if !p.janitor {
			p.janitor = true
			go p.closeIdle()
		}
	}
	pc.users++
	var once sync.Once
	return pc.conn, func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			pc.users--
			pc.lastUsed = time.Now()
			if pc.evicted && pc.users == 0 {
				_ = pc.conn.Close()
			}
		})
	}, nil
}

// closeIdle closes the connections nobody used for connIdle, until none
// is left.
func (p *conns) closeIdle() {
	idle := p.idle
	if idle == 0 {
		idle = connIdle
	}
	for {
		time.Sleep(idle / 4)
		p.mu.Lock()
		for k, pc := range p.m {
			if pc.users == 0 && time.Since(pc.lastUsed) > idle {
				_ = pc.conn.Close()
				delete(p.m, k)
			}
		}
		if len(p.m) == 0 {
			p.janitor = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}
