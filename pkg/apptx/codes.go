package apptx

import (
	"errors"
	"fmt"
)

// Codes of refused transactions and queries (ResponseCheckTx.Code,
// ExecTxResult.Code, ResponseQuery.Code). Zero is success; each reason has
// its own code, and the log names what is wrong.
const (
	CodeOK uint32 = 0

	// CodeMalformed: not a JSON object, an unknown field, a field of the
	// wrong JSON type, or trailing data after the object.
	CodeMalformed uint32 = 1
	// CodeUnknownType: "type" is not notarize, issue or transfer.
	CodeUnknownType uint32 = 2
	// CodeInvalidBody: a body field is missing, out of range or of the
	// wrong type (a negative or too large amount is one).
	CodeInvalidBody uint32 = 3
	// CodeWrongChain: chainID is not the chain's.
	CodeWrongChain uint32 = 4
	// CodeInvalidSender: from is not a hex ed25519 public key.
	CodeInvalidSender uint32 = 5
	// CodeUnsigned: sig is missing.
	CodeUnsigned uint32 = 6
	// CodeBadSignature: sig is not a valid signature of the sign bytes by from.
	CodeBadSignature uint32 = 7
	// CodeBadNonce: nonce is not the sender's last nonce plus one.
	CodeBadNonce uint32 = 8
	// CodeDocExists: the document hash is already notarised.
	CodeDocExists uint32 = 9
	// CodeNotIssuer: the asset exists and from is not its issuer.
	CodeNotIssuer uint32 = 10
	// CodeSupplyOverflow: the issue would take the supply past 2^64-1.
	CodeSupplyOverflow uint32 = 11
	// CodeUnknownAsset: a transfer of an asset never issued.
	CodeUnknownAsset uint32 = 12
	// CodeInsufficientFunds: the sender's balance is below the amount.
	CodeInsufficientFunds uint32 = 13
	// CodeSelfTransfer: a transfer to the sender's own address.
	CodeSelfTransfer uint32 = 14
	// CodeTooLarge: the transaction is larger than MaxTxBytes.
	CodeTooLarge uint32 = 15

	// CodeNotFound: the queried record does not exist.
	CodeNotFound uint32 = 100
	// CodeBadQuery: a query parameter is missing or malformed.
	CodeBadQuery uint32 = 101
	// CodeUnknownPath: no query has that path.
	CodeUnknownPath uint32 = 102
	// CodeInternal: the application failed to read its own state.
	CodeInternal uint32 = 110
)

// Error is a refusal with its code.
type Error struct {
	Code uint32
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errorf(code uint32, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of an *Error in err's chain, CodeOK for nil and
// CodeInternal for any other error.
func CodeOf(err error) uint32 {
	if err == nil {
		return CodeOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
