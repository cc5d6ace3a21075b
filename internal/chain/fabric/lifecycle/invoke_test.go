package lifecycle

import (
	"bytes"
	"testing"

	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
)

func TestInvocationAsPeerAndCommitterReadIt(t *testing.T) {
	org1 := newTestOrg(t, "org1.example.com", "Org1MSP")
	org2 := newTestOrg(t, "org2.example.com", "Org2MSP")
	nonce := bytes.Repeat([]byte{7}, 32)
	inv, err := NewInvocation(org1.admin, "mychannel", "notary", "Get", [][]byte{[]byte("9f86d0")}, nonce)
	if err != nil {
		t.Fatal(err)
	}
	d, err := decodeProposal(inv.Signed())
	if err != nil {
		t.Fatal(err)
	}
	if d.chaincode != "notary" || d.fn != "Get" || string(d.arg) != "9f86d0" || d.chdr.GetChannelId() != "mychannel" ||
		d.chdr.GetTxId() != inv.TxID() || d.creator.GetMspid() != "Org1MSP" || !bytes.Equal(d.shdr.GetNonce(), nonce) {
		t.Fatalf("the peer reads %s.%s(%q) on %q, tx %s by %s; want notary.Get(9f86d0) on mychannel, tx %s by Org1MSP",
			d.chaincode, d.fn, d.arg, d.chdr.GetChannelId(), d.chdr.GetTxId(), d.creator.GetMspid(), inv.TxID())
	}

	// The same nonce and signer are the same transaction; another nonce
	// or another signer is another.
	same, _ := NewInvocation(org1.admin, "mychannel", "notary", "Get", [][]byte{[]byte("9f86d0")}, nonce)
	other, _ := NewInvocation(org1.admin, "mychannel", "notary", "Get", [][]byte{[]byte("9f86d0")}, []byte("another"))
	byOrg2, _ := NewInvocation(org2.admin, "mychannel", "notary", "Get", [][]byte{[]byte("9f86d0")}, nonce)
	if same.TxID() != inv.TxID() || other.TxID() == inv.TxID() || byOrg2.TxID() == inv.TxID() {
		t.Errorf("transaction IDs: same nonce %v, other nonce %v, other signer %v; want same, differs, differs",
			same.TxID() == inv.TxID(), other.TxID() != inv.TxID(), byOrg2.TxID() != inv.TxID())
	}
	if _, err := NewInvocation(org1.admin, "mychannel", "notary", "Get", nil, nil); err == nil {
		t.Error("an invocation without a nonce was made")
	}

	var responses []*pb.ProposalResponse
	for _, org := range []*testOrg{org1, org2} {
		r, err := endorseAs(org.peer, d, []byte(`{"hash":"9f86d0"}`))
		if err != nil {
			t.Fatal(err)
		}
		responses = append(responses, r)
	}
	env, err := inv.Transaction(responses)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := decodeTransaction(env)
	if err != nil {
		t.Fatal(err)
	}
	if tx.chdr.GetTxId() != inv.TxID() || tx.fn != "Get" || string(tx.arg) != "9f86d0" ||
		len(tx.endorsers) != 2 || tx.endorsers[0] != "Org1MSP" || tx.endorsers[1] != "Org2MSP" {
		t.Errorf("the committer reads tx %s calling %s(%q), endorsed by %v; want %s calling Get(9f86d0), endorsed by Org1MSP and Org2MSP",
			tx.chdr.GetTxId(), tx.fn, tx.arg, tx.endorsers, inv.TxID())
	}
}
