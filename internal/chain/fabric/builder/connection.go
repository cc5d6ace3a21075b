package builder

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ConnectionFile is the name of the file, in a ccaas package's code and in
// the release directory's chaincode/server, that tells the peer how to dial
// the chaincode server.
const ConnectionFile = "connection.json"

// Connection is a checked connection.json. The peer reads the file itself;
// Connection is what ChainDock made sure it says.
type Connection struct {
	// Address is the chaincode server's host:port.
	Address string
	// DialTimeout is zero when the file leaves it to the peer (3s).
	DialTimeout        time.Duration
	TLSRequired        bool
	ClientAuthRequired bool
	// ClientKey and ClientCert are what the peer presents when the server
	// asks for a client certificate; RootCert verifies the server.
	ClientKey  string
	ClientCert string
	RootCert   string
}

// The fields of connection.json, as Fabric's peer reads them.
const (
	fieldAddress     = "address"
	fieldDialTimeout = "dial_timeout"
	fieldTLS         = "tls_required"
	fieldClientAuth  = "client_auth_required"
	fieldClientKey   = "client_key"
	fieldClientCert  = "client_cert"
	fieldRootCert    = "root_cert"
)

var knownFields = []string{fieldAddress, fieldDialTimeout, fieldTLS, fieldClientAuth, fieldClientKey, fieldClientCert, fieldRootCert}

// FieldError is one problem with one field of a file.
type FieldError struct {
	// Field is the JSON field, or a path inside META-INF.
	Field  string
	Detail string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Detail
	}
	return e.Field + ": " + e.Detail
}

// ValidationError lists every problem found in one file or directory.
type ValidationError struct {
	// File is the file or directory, as the package names it
	// (connection.json, META-INF).
	File     string
	Problems []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return "invalid " + e.File + ": " + strings.Join(parts, "; ")
}

// Has reports whether one of the problems is about field.
func (e *ValidationError) Has(field string) bool {
	return slices.ContainsFunc(e.Problems, func(p FieldError) bool { return p.Field == field })
}

// ParseConnection checks a connection.json and returns what it says, or a
// *ValidationError naming every field at fault. It is stricter than the
// peer, which ignores unknown fields and reads a misspelt one as missing:
// a package that passes here is one the peer can dial with.
func ParseConnection(data []byte, now time.Time) (Connection, error) {
	var c Connection
	var problems []FieldError
	add := func(field, format string, args ...any) {
		problems = append(problems, FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
	}
	invalid := func() error { return &ValidationError{File: ConnectionFile, Problems: problems} }

	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		if err == nil {
			err = errors.New("null")
		}
		add("", "not a JSON object: %v", err)
		return c, invalid()
	}
	var unknown []string
	for k := range raw {
		if !slices.Contains(knownFields, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		add(k, "unknown field (known fields: %s)", strings.Join(knownFields, ", "))
	}

	str := func(field string) (string, bool) {
		v, ok := raw[field]
		if !ok {
			return "", false
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil || isNull(v) {
			add(field, "must be a string, not %s", jsonKind(v))
			return "", false
		}
		return s, true
	}
	boolean := func(field string) bool {
		v, ok := raw[field]
		if !ok {
			return false
		}
		var b bool
		if err := json.Unmarshal(v, &b); err != nil || isNull(v) {
			add(field, "must be true or false, not %s", jsonKind(v))
			return false
		}
		return b
	}

	if addr, ok := str(fieldAddress); !ok {
		if _, present := raw[fieldAddress]; !present {
			add(fieldAddress, "required: the chaincode server's host:port")
		}
	} else if err := checkAddress(addr); err != nil {
		add(fieldAddress, "%v", err)
	} else {
		c.Address = addr
	}

	if v, ok := raw[fieldDialTimeout]; ok {
		var s string
		if err := json.Unmarshal(v, &s); err != nil || isNull(v) {
			// The peer reads a number as nanoseconds, so "dial_timeout": 10
			// would give up after 10ns: refuse it rather than guess.
			add(fieldDialTimeout, "must be a duration string such as \"10s\", not %s (the peer reads a number as nanoseconds)", jsonKind(v))
		} else if d, err := time.ParseDuration(s); err != nil {
			add(fieldDialTimeout, "%q is not a duration such as \"10s\" or \"1m30s\"", s)
		} else if d <= 0 {
			add(fieldDialTimeout, "%q must be more than zero", s)
		} else {
			c.DialTimeout = d
		}
	}

	c.TLSRequired = boolean(fieldTLS)
	c.ClientAuthRequired = boolean(fieldClientAuth)
	key, _ := str(fieldClientKey)
	cert, _ := str(fieldClientCert)
	root, _ := str(fieldRootCert)

	switch {
	case !c.TLSRequired:
		// The peer ignores these without TLS; set, they say the author
		// meant TLS and forgot to ask for it.
		if c.ClientAuthRequired {
			add(fieldClientAuth, "is true but tls_required is not")
		}
		for _, f := range []struct{ name, value string }{{fieldClientKey, key}, {fieldClientCert, cert}, {fieldRootCert, root}} {
			if f.value != "" {
				add(f.name, "is set but tls_required is not true")
			}
		}
	default:
		if root == "" {
			add(fieldRootCert, "required when tls_required is true: the PEM CA certificates that verify the chaincode server")
		} else if _, err := parseCertificates(root, now); err != nil {
			add(fieldRootCert, "%v", err)
		} else {
			c.RootCert = root
		}
		if !c.ClientAuthRequired {
			if key != "" {
				add(fieldClientKey, "is set but client_auth_required is not true")
			}
			if cert != "" {
				add(fieldClientCert, "is set but client_auth_required is not true")
			}
			break
		}
		keyOK, certOK := false, false
		if key == "" {
			add(fieldClientKey, "required when client_auth_required is true: the peer's PEM private key")
		} else if err := checkPrivateKey(key); err != nil {
			add(fieldClientKey, "%v", err)
		} else {
			keyOK = true
		}
		if cert == "" {
			add(fieldClientCert, "required when client_auth_required is true: the peer's PEM client certificate")
		} else if _, err := parseCertificates(cert, now); err != nil {
			add(fieldClientCert, "%v", err)
		} else {
			certOK = true
		}
		if keyOK && certOK {
			if _, err := tls.X509KeyPair([]byte(cert), []byte(key)); err != nil {
				add(fieldClientKey, "does not go with client_cert: %v", err)
			} else {
				c.ClientKey, c.ClientCert = key, cert
			}
		}
	}

	if len(problems) > 0 {
		return Connection{}, invalid()
	}
	return c, nil
}

// checkAddress accepts host:port with a literal IP or a DNS name as host,
// the forms gRPC dials.
func checkAddress(addr string) error {
	if strings.Contains(addr, "{{") {
		return fmt.Errorf("%q is a template; ChainDock's builder takes the address itself", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", addr, port)
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if !validHostname(host) {
		return fmt.Errorf("%q: host %q is neither an IP address nor a DNS name", addr, host)
	}
	return nil
}

const hostnameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"

func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		// Underscores are not DNS, but container and compose names use
		// them and resolvers accept them.
		if strings.Trim(label, hostnameChars) != "" {
			return false
		}
	}
	return true
}

// parseCertificates reads one or more PEM certificates and nothing else.
func parseCertificates(s string, now time.Time) ([]*x509.Certificate, error) {
	rest := []byte(s)
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, not CERTIFICATE", len(certs)+1, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", len(certs)+1, err)
		}
		if now.After(c.NotAfter) {
			return nil, fmt.Errorf("certificate %q expired at %s", c.Subject.String(), c.NotAfter.UTC().Format(time.RFC3339))
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate (want -----BEGIN CERTIFICATE-----)")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("text after the last PEM certificate")
	}
	return certs, nil
}

// checkPrivateKey reads exactly one unencrypted PEM private key.
func checkPrivateKey(s string) error {
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return errors.New("no PEM private key (want -----BEGIN PRIVATE KEY-----)")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return errors.New("more than one PEM block, or text after the key")
	}
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		_, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		_, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		_, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return errors.New("the key is encrypted; the peer needs it in clear")
	default:
		return fmt.Errorf("PEM block is %q, not a private key", block.Type)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", block.Type, err)
	}
	return nil
}

// isNull reports whether v is JSON null, which encoding/json decodes into
// a string or a bool without error, leaving it empty.
func isNull(v json.RawMessage) bool {
	return string(bytes.TrimSpace(v)) == "null"
}

// jsonKind names the JSON type of v for messages.
func jsonKind(v json.RawMessage) string {
	t := bytes.TrimSpace(v)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}
