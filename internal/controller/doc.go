// Package controller makes the world match the store. It reconciles one
// network at a time from a work queue (level-triggered: every reconcile
// reads the desired state afresh and repeats whatever step is missing),
// drives the chain driver and the runtime, applies the health rules
// (a crashed node is restarted, with backoff when it keeps crashing), writes
// the observed status back and records events. Only the controller acts; the
// API only writes desired state.
package controller
