// Package process is the embedded runtime: every node is a local process with
// its own directory, started under a small supervisor (the node shim, a
// "chaindock node-shim" process in its own session) that writes the node's
// output to rotated log files and records how it exited. Nodes outlive the
// server; a new server re-adopts them by PID and process start time, so a
// reused PID is never taken for a node.
//
// Layout of a node directory (DataDir/<id>):
//
//	instance.json  the spec the node was started with (written by the runtime)
//	init.json      its init steps, programs resolved (written by the runtime)
//	sidecars.json  its sidecars, programs resolved (written by the runtime)
//	state.json     shim and node PIDs and start times (written by the shim)
//	exit.json      how the node exited (written by the shim)
//	home/          the node's working directory and files
//	logs/          node.log and its rotated predecessors
package process
