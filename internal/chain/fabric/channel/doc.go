// Package channel builds the configuration of a Fabric application
// channel without configtxgen: the genesis block an orderer joins with
// through the channel participation API, and the config updates that
// change a running channel (anchor peers, organisations joining and
// leaving), signed by the organisations' admins as the channel's policies
// require.
//
// The configuration is what Fabric 2.5 and 3.x both run: etcdraft
// ordering, channel and orderer capabilities V2_0, application
// capabilities V2_5, node OUs in every MSP, and the policies of Fabric's
// sample configtx.yaml.
package channel
