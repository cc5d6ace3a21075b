package ethereum

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"path"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/google/uuid"
)

// genesisDelay puts the genesis time this far after the plan, rounded up
// to a whole second. No block can be sealed before genesis time plus the
// block period, so every node has started and met its peers by then and
// block 1 is sealed once, by the sealer in turn. With a genesis in the
// past the first sealer to start seals its own block 1 before the others
// listen, each of them does the same, and the forks hold the chain back
// until the nodes sync with each other (see nodeConfig).
const genesisDelay = 2 * time.Second

// Clique's extra-data layout: vanity, the sealers' addresses, a seal.
const (
	extraVanity = 32
	extraSeal   = crypto.SignatureLength
)

// cliqueExtra is the genesis extra-data naming the initial sealers.
func cliqueExtra(sealers []common.Address) []byte {
	extra := make([]byte, 0, extraVanity+len(sealers)*common.AddressLength+extraSeal)
	extra = append(extra, make([]byte, extraVanity)...)
	for _, a := range sortedAddresses(sealers) {
		extra = append(extra, a.Bytes()...)
	}
	return append(extra, make([]byte, extraSeal)...)
}

// genesisDoc is genesis.json as "geth init" reads it. (go-ethereum's own
// core.Genesis is not used: package core links geth's database layer,
// which does not build against the pebble release CometBFT needs.)
type genesisDoc struct {
	Config     *params.ChainConfig       `json:"config"`
	Nonce      hexutil.Uint64            `json:"nonce"`
	Timestamp  hexutil.Uint64            `json:"timestamp"`
	ExtraData  hexutil.Bytes             `json:"extraData"`
	GasLimit   hexutil.Uint64            `json:"gasLimit"`
	Difficulty *hexutil.Big              `json:"difficulty"`
	Alloc      map[string]genesisAccount `json:"alloc"`
}

type genesisAccount struct {
	Balance *hexutil.Big `json:"balance"`
}

// genesis is the network's genesis block: Clique with every fork up to
// London from block 0, and none of the time-based ones (Shanghai brings
// withdrawals, which Clique refuses).
func genesis(s settings, sealers []common.Address, now time.Time) *genesisDoc {
	cfg := *params.AllCliqueProtocolChanges
	cfg.ChainID = new(big.Int).SetUint64(s.chainID)
	cfg.Clique = &params.CliqueConfig{Period: s.period, Epoch: CliqueEpoch}
	cfg.ShanghaiTime, cfg.CancunTime, cfg.PragueTime, cfg.VerkleTime = nil, nil, nil, nil

	start := now.Add(genesisDelay)
	ts := uint64(max(start.Unix(), 0)) //nolint:gosec // not negative
	if start.Nanosecond() > 0 {
		ts++
	}
	alloc := map[string]genesisAccount{}
	for a, b := range s.alloc {
		alloc[hex.EncodeToString(a.Bytes())] = genesisAccount{Balance: (*hexutil.Big)(new(big.Int).Set(b))}
	}
	for _, a := range sealers {
		k := hex.EncodeToString(a.Bytes())
		if _, ok := alloc[k]; !ok {
			alloc[k] = genesisAccount{Balance: (*hexutil.Big)(new(big.Int).Set(SealerBalance))}
		}
	}
	return &genesisDoc{
		Config:     &cfg,
		Timestamp:  hexutil.Uint64(ts),
		ExtraData:  cliqueExtra(sealers),
		GasLimit:   hexutil.Uint64(s.gasLimit),
		Difficulty: (*hexutil.Big)(big.NewInt(1)),
		Alloc:      alloc,
	}
}

func genesisJSON(s settings, sealers []common.Address, now time.Time) ([]byte, error) {
	g := genesis(s, sealers, now)
	if err := g.Config.CheckConfigForkOrder(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// encryptKey is the sealer's key in geth's keystore format, encrypted with
// its password. The key's ID comes from r; the scrypt salt and the cipher's
// IV come from crypto/rand, as keystore.EncryptKey takes no source. Light
// scrypt parameters: the file is sealed again by the platform's own
// encryption of the plan, and geth decrypts it at every start of the
// sealer, which with the standard ones costs 256 MiB and about a second of
// CPU.
func encryptKey(r io.Reader, s *sealer) ([]byte, error) {
	id, err := uuid.NewRandomFromReader(r)
	if err != nil {
		return nil, err
	}
	return keystore.EncryptKey(&keystore.Key{Id: id, Address: s.address, PrivateKey: s.key}, s.password, keystore.LightScryptN, keystore.LightScryptP)
}

// keystoreFile names a key file as geth itself does.
func keystoreFile(now time.Time, a common.Address) string {
	ts := now.UTC().Format("2006-01-02T15-04-05.000000000") + "Z"
	return path.Join(dirKeystore, fmt.Sprintf("UTC--%s--%x", ts, a.Bytes()))
}
