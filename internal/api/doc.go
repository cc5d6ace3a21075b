// Package api is ChainDock's REST API under /api/v1. It writes desired state
// to the store and reads observed state back; it never acts on nodes itself.
// Errors are RFC 9457 problem documents that name the failing field.
package api
