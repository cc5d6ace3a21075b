package apptx

// Module is one part of the application: the transaction types it
// executes and the query paths it answers. Modules are what the platform's
// contract store deploys onto a network running this application.
type Module struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Types   []Type   `json:"types"`
	Queries []string `json:"queries"`
}

// The application's modules.
const (
	ModuleNotary = "notary"
	ModuleAsset  = "asset"
)

// Modules lists the modules this version of the application serves.
func Modules() []Module {
	return []Module{
		{Name: ModuleNotary, Version: "1.0.0", Types: []Type{TypeNotarize}, Queries: []string{PathNotaryDoc, PathNotaryProof}},
		{Name: ModuleAsset, Version: "1.0.0", Types: []Type{TypeIssue, TypeTransfer},
			Queries: []string{PathAssetBalance, PathAssetHistory, PathAssetInfo}},
	}
}

// ModuleOf names the module that executes transactions of type t, or ""
// for a type no module knows.
func ModuleOf(t Type) string {
	for _, m := range Modules() {
		for _, mt := range m.Types {
			if mt == t {
				return m.Name
			}
		}
	}
	return ""
}
