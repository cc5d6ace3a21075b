// Package pki is the certificate authority of a Fabric organisation.
//
// Each organisation has two CAs, as cryptogen makes them: a membership CA
// that signs the enrolment certificates its MSP recognises (with the node
// OU — client, peer, orderer or admin — as the only subject OU), and a TLS
// CA that signs the certificates nodes serve and dial with. ChainDock runs
// them itself, so a network needs neither cryptogen nor a fabric-ca server.
// The package writes nothing to disk: MSPFiles and TLSFiles return the
// files of Fabric's local MSP and TLS directories, and CA keys are PEM that
// the platform seals in its store.
package pki
