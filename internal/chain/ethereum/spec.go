package ethereum

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

// Defaults and limits of spec.ethereum.
const (
	DefaultBlockPeriod = time.Second
	// MaxBlockPeriod stays well below the 30 s after which the platform
	// reports a node whose height stands still as stalled.
	MaxBlockPeriod  = 15 * time.Second
	DefaultGasLimit = 30_000_000
	MinGasLimit     = 1_000_000
	MaxGasLimit     = 1_000_000_000
	// MaxChainID is the largest chain ID whose EIP-155 signature value
	// (chainID*2+36) still fits a JavaScript number, the limit wallets
	// such as MetaMask enforce.
	MaxChainID = 4_503_599_627_370_476
	MaxAlloc   = 1000
	// CliqueEpoch is how many blocks apart Clique checkpoints its signer
	// list and forgets pending votes (geth's default).
	CliqueEpoch = 30_000
)

// MaxBalance bounds one genesis balance: a trillion ether, in wei. With at
// most MaxAlloc accounts no sum of balances can overflow 256 bits.
var MaxBalance = new(big.Int).Exp(big.NewInt(10), big.NewInt(30), nil)

// SealerBalance is what every sealer account holds at genesis, in wei (a
// million ether), so that the platform can pay for the transactions it
// sends from it.
var SealerBalance = new(big.Int).Exp(big.NewInt(10), big.NewInt(24), nil)

// publicChains are chain IDs of public networks, mainnets and testnets. A
// private network with one of them would accept transactions signed for
// the public chain, and wallets would take it for that chain.
var publicChains = map[uint64]string{
	1:        "Ethereum mainnet",
	2:        "Morden and Expanse",
	3:        "Ropsten",
	4:        "Rinkeby",
	5:        "Goerli",
	10:       "OP Mainnet",
	56:       "BNB Smart Chain",
	61:       "Ethereum Classic",
	63:       "Mordor",
	100:      "Gnosis",
	137:      "Polygon",
	250:      "Fantom",
	324:      "zkSync Era",
	1101:     "Polygon zkEVM",
	8453:     "Base",
	17000:    "Holesky",
	42161:    "Arbitrum One",
	43114:    "Avalanche C-Chain",
	59144:    "Linea",
	80001:    "Polygon Mumbai",
	80002:    "Polygon Amoy",
	84532:    "Base Sepolia",
	421614:   "Arbitrum Sepolia",
	534352:   "Scroll",
	560048:   "Hoodi",
	11155111: "Sepolia",
	11155420: "OP Sepolia",
}

// Derived chain IDs lie in [derivedBase, derivedBase+derivedSpan): above
// the small IDs public chains and development tools favour, and below
// 2^31 so that tools keeping a chain ID in an int32 cope.
const (
	derivedBase = 1_000_000
	derivedSpan = 1<<31 - derivedBase
)

// ChainIDFor is the chain ID of a network named name whose spec sets none:
// the same for the same name, and different names rarely collide.
func ChainIDFor(name string) uint64 {
	h := crypto.Keccak256([]byte("chaindock/ethereum/" + name))
	id := derivedBase + binary.BigEndian.Uint64(h[:8])%derivedSpan
	for publicChains[id] != "" {
		id++
	}
	return id
}

// settings are a network's spec.ethereum with the defaults filled in.
type settings struct {
	chainID  uint64
	period   uint64 // seconds
	gasLimit uint64
	alloc    map[common.Address]*big.Int
}

func settingsOf(n *apis.Network) (settings, error) {
	s := settings{chainID: ChainIDFor(n.Metadata.Name), period: uint64(DefaultBlockPeriod / time.Second), gasLimit: DefaultGasLimit}
	e := n.Spec.Ethereum
	if e == nil {
		return s, nil
	}
	if errs := validateEthereum(&n.Spec); len(errs) > 0 {
		return s, errs
	}
	if e.ChainID != nil {
		s.chainID = *e.ChainID
	}
	if e.BlockPeriod != nil {
		s.period = uint64(max(e.BlockPeriod.Duration/time.Second, 0)) //nolint:gosec // not negative
	}
	if e.GasLimit != 0 {
		s.gasLimit = e.GasLimit
	}
	for k, v := range e.Alloc {
		if s.alloc == nil {
			s.alloc = map[common.Address]*big.Int{}
		}
		b, _ := new(big.Int).SetString(v, 10) // validated above
		s.alloc[common.HexToAddress(k)] = b
	}
	return s, nil
}

// Validate implements chain.Driver.
func (d *Driver) Validate(spec *apis.NetworkSpec) apis.ErrorList {
	var errs apis.ErrorList
	if spec.CometBFT != nil {
		errs.Add("spec.cometbft", "applies only to chain cometbft, not %s", Name)
	}
	// The consensus timeouts are CometBFT's. Values equal to the defaults
	// the platform fills in pass, so that a stored spec applies again.
	var defaults apis.Network
	apis.SetDefaults(&defaults)
	if t := spec.Consensus.TimeoutCommit; !t.IsZero() && t != defaults.Spec.Consensus.TimeoutCommit {
		errs.Add("spec.consensus.timeoutCommit", "applies only to chain cometbft: the time between blocks of an ethereum network is spec.ethereum.blockPeriod")
	}
	if t := spec.Consensus.TimeoutPropose; !t.IsZero() && t != defaults.Spec.Consensus.TimeoutPropose {
		errs.Add("spec.consensus.timeoutPropose", "applies only to chain cometbft")
	}
	return append(errs, validateEthereum(spec)...)
}

func validateEthereum(spec *apis.NetworkSpec) apis.ErrorList {
	var errs apis.ErrorList
	e := spec.Ethereum
	if e == nil {
		e = &apis.EthereumSpec{}
	}
	const p = "spec.ethereum"
	if e.ChainID != nil {
		switch id := *e.ChainID; {
		case id == 0 || id > MaxChainID:
			errs.Add(p+".chainID", "must be from 1 to %d, not %d (leave it out for one derived from the network's name)", uint64(MaxChainID), id)
		case publicChains[id] != "":
			errs.Add(p+".chainID", "%d is the chain ID of %s: a private network must have its own", id, publicChains[id])
		}
	}
	period := DefaultBlockPeriod
	if e.BlockPeriod != nil {
		period = e.BlockPeriod.Duration
		switch {
		case period < 0 || period > MaxBlockPeriod:
			errs.Add(p+".blockPeriod", "must be from 0s to %s, not %s", MaxBlockPeriod, period)
		case period%time.Second != 0:
			errs.Add(p+".blockPeriod", "must be whole seconds, not %s", period)
		}
	}
	sealers := 0
	for _, n := range spec.Nodes() {
		if n.Role == apis.RoleValidator {
			sealers++
		}
	}
	if period == 0 && sealers > 1 {
		errs.Add(p+".blockPeriod", "0s (sealing only when a transaction waits) needs a single sealer, and this network has %d: Clique sealers take turns, which a chain without a block period cannot schedule", sealers)
	}
	if c := spec.Consensus.CreateEmptyBlocks; c != nil && *c != (period != 0) {
		if period == 0 {
			errs.Add("spec.consensus.createEmptyBlocks", "must be false or left out when spec.ethereum.blockPeriod is 0s: the chain seals only when a transaction waits")
		} else {
			errs.Add("spec.consensus.createEmptyBlocks", "must be true or left out: a Clique chain with a block period seals empty blocks; set spec.ethereum.blockPeriod to 0s to seal only when a transaction waits")
		}
	}
	if g := e.GasLimit; g != 0 && (g < MinGasLimit || g > MaxGasLimit) {
		errs.Add(p+".gasLimit", "must be from %d to %d, not %d", MinGasLimit, MaxGasLimit, g)
	}
	if len(e.Alloc) > MaxAlloc {
		errs.Add(p+".alloc", "has %d accounts, more than %d", len(e.Alloc), MaxAlloc)
	}
	seen := map[common.Address]string{}
	for _, k := range slices.Sorted(maps.Keys(e.Alloc)) {
		path := apis.Path(p+".alloc", k)
		if msg := checkAddress(k); msg != "" {
			errs.Add(path, "%s", msg)
		} else {
			a := common.HexToAddress(k)
			if other, dup := seen[a]; dup {
				errs.Add(path, "is the same account as %s", other)
			}
			seen[a] = k
		}
		if msg := checkBalance(e.Alloc[k]); msg != "" {
			errs.Add(path, "%s", msg)
		}
	}
	return errs
}

// checkAddress explains what is wrong with an account address, if
// anything. A mixed-case address carries an EIP-55 checksum, which must
// match: it is how a mistyped address is caught.
func checkAddress(s string) string {
	hex, ok := strings.CutPrefix(s, "0x")
	if !ok || len(hex) != 40 || !common.IsHexAddress(s) {
		return fmt.Sprintf("%q is not an account address: want 0x and 40 hexadecimal digits", s)
	}
	if hex != strings.ToLower(hex) && hex != strings.ToUpper(hex) && common.HexToAddress(s).Hex() != s {
		return fmt.Sprintf("%q fails its EIP-55 checksum (mixed case; that would be %s): check the address, or write it in lower case", s, common.HexToAddress(s).Hex())
	}
	return ""
}

// checkBalance explains what is wrong with a balance in wei, if anything.
func checkBalance(s string) string {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return fmt.Sprintf("balance %q is not a whole number of wei in decimal digits", s)
	}
	b, _ := new(big.Int).SetString(s, 10)
	if b.Cmp(MaxBalance) > 0 {
		return fmt.Sprintf("balance %s wei is more than %s (a trillion ether)", s, MaxBalance)
	}
	return ""
}

var _ chain.IdleChain = (*Driver)(nil)

// MakesEmptyBlocks implements chain.IdleChain: with a block period of 0
// the one sealer seals only when a transaction is pending.
func (d *Driver) MakesEmptyBlocks(spec *apis.NetworkSpec) bool {
	e := spec.Ethereum
	return e == nil || e.BlockPeriod == nil || e.BlockPeriod.Duration > 0
}
