// Package apis defines ChainDock's resources (metadata, desired spec, observed
// status) and the validation every spec passes before it is stored.
package apis
