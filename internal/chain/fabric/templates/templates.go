// Package templates holds ChainDock's built-in Fabric chaincode, written
// with the Fabric contract API and served as chaincode-as-a-service by the
// chaindock-chaincode program: notarisation (package notary) and asset
// transfer (package asset).
package templates

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/chaindock/chaindock/internal/chain/fabric/templates/asset"
	"github.com/chaindock/chaindock/internal/chain/fabric/templates/notary"
)

var contracts = map[string]func() contractapi.ContractInterface{
	notary.Name: func() contractapi.ContractInterface { return notary.New() },
	asset.Name:  func() contractapi.ContractInterface { return asset.New() },
}

// Names lists the built-in templates, sorted.
func Names() []string {
	names := make([]string, 0, len(contracts))
	for n := range contracts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// New returns the chaincode of the template name.
func New(name string) (*contractapi.ContractChaincode, error) {
	newContract, ok := contracts[name]
	if !ok {
		return nil, fmt.Errorf("no chaincode template %q (templates: %s)", name, strings.Join(Names(), ", "))
	}
	cc, err := contractapi.NewChaincode(newContract())
	if err != nil {
		return nil, fmt.Errorf("chaincode template %s: %w", name, err)
	}
	return cc, nil
}
