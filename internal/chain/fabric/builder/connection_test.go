package builder

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

type obj = map[string]any

func TestParseConnectionGood(t *testing.T) {
	p := newTestPKI(t)
	tests := []struct {
		name string
		in   obj
		want Connection
	}{
		{"plain", obj{"address": "cc1.org1:9999"}, Connection{Address: "cc1.org1:9999"}},
		{"as fabric-samples write it", obj{"address": "asset_ccaas:9999", "dial_timeout": "10s", "tls_required": false},
			Connection{Address: "asset_ccaas:9999", DialTimeout: 10 * time.Second}},
		{"ipv4", obj{"address": "127.0.0.1:7052"}, Connection{Address: "127.0.0.1:7052"}},
		{"ipv6", obj{"address": "[::1]:7052", "dial_timeout": "1m30s"}, Connection{Address: "[::1]:7052", DialTimeout: 90 * time.Second}},
		{"tls off with empty tls fields", obj{"address": "cc:1", "tls_required": false, "client_auth_required": false, "client_key": "", "client_cert": "", "root_cert": ""},
			Connection{Address: "cc:1"}},
		{"tls", obj{"address": "cc:7052", "tls_required": true, "root_cert": p.caCert},
			Connection{Address: "cc:7052", TLSRequired: true, RootCert: p.caCert}},
		{"tls with a CA bundle", obj{"address": "cc:7052", "tls_required": true, "root_cert": p.caCert + p.clientCert},
			Connection{Address: "cc:7052", TLSRequired: true, RootCert: p.caCert + p.clientCert}},
		{"mutual tls", obj{"address": "cc:7052", "tls_required": true, "client_auth_required": true, "root_cert": p.caCert, "client_cert": p.clientCert, "client_key": p.clientKey},
			Connection{Address: "cc:7052", TLSRequired: true, ClientAuthRequired: true, RootCert: p.caCert, ClientCert: p.clientCert, ClientKey: p.clientKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConnection(mustJSON(t, tt.in), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseConnectionBad(t *testing.T) {
	p := newTestPKI(t)
	tls := func(extra obj) obj {
		o := obj{"address": "cc:7052", "tls_required": true, "root_cert": p.caCert}
		for k, v := range extra {
			o[k] = v
		}
		return o
	}
	mtls := func(extra obj) obj {
		o := tls(obj{"client_auth_required": true, "client_cert": p.clientCert, "client_key": p.clientKey})
		for k, v := range extra {
			o[k] = v
		}
		return o
	}
	tests := []struct {
		name string
		in   any // an obj, or raw text
		// fields are the fields the problems name, in order.
		fields []string
		// detail is part of the first problem's text.
		detail string
	}{
		{"not json", "address: cc:1", []string{""}, "not a JSON object"},
		{"array", "[]", []string{""}, "not a JSON object"},
		{"null", "null", []string{""}, "not a JSON object"},
		{"misspelt field", obj{"adress": "cc:1"}, []string{"adress", "address"}, "unknown field"},
		{"unknown fields sorted", obj{"address": "cc:1", "zz": 1, "peer_name": "p"}, []string{"peer_name", "zz"}, "unknown field"},
		{"no address", obj{"dial_timeout": "1s"}, []string{"address"}, "required"},
		{"address number", obj{"address": 9999}, []string{"address"}, "must be a string, not a number"},
		{"address without port", obj{"address": "cc1.org1"}, []string{"address"}, "not host:port"},
		{"address without host", obj{"address": ":9999"}, []string{"address"}, "no host"},
		{"port zero", obj{"address": "cc:0"}, []string{"address"}, "from 1 to 65535"},
		{"port too big", obj{"address": "cc:70000"}, []string{"address"}, "from 1 to 65535"},
		{"port name", obj{"address": "cc:grpc"}, []string{"address"}, "from 1 to 65535"},
		{"bad host", obj{"address": "bad host:9999"}, []string{"address"}, "neither an IP address nor a DNS name"},
		{"url", obj{"address": "grpc://cc:9999"}, []string{"address"}, "not host:port"},
		{"template", obj{"address": "{{.peername}}_cc:9999"}, []string{"address"}, "template"},
		{"dial_timeout number", obj{"address": "cc:1", "dial_timeout": 10}, []string{"dial_timeout"}, "nanoseconds"},
		{"dial_timeout no unit", obj{"address": "cc:1", "dial_timeout": "10"}, []string{"dial_timeout"}, "not a duration"},
		{"dial_timeout empty", obj{"address": "cc:1", "dial_timeout": ""}, []string{"dial_timeout"}, "not a duration"},
		{"dial_timeout negative", obj{"address": "cc:1", "dial_timeout": "-1s"}, []string{"dial_timeout"}, "more than zero"},
		{"dial_timeout zero", obj{"address": "cc:1", "dial_timeout": "0s"}, []string{"dial_timeout"}, "more than zero"},
		{"tls_required string", obj{"address": "cc:1", "tls_required": "true"}, []string{"tls_required"}, "must be true or false, not a string"},
		{"client_auth_required number", obj{"address": "cc:1", "tls_required": true, "root_cert": p.caCert, "client_auth_required": 1}, []string{"client_auth_required"}, "must be true or false"},
		{"client auth without tls", obj{"address": "cc:1", "client_auth_required": true}, []string{"client_auth_required"}, "tls_required is not"},
		{"root_cert without tls", obj{"address": "cc:1", "root_cert": p.caCert}, []string{"root_cert"}, "tls_required is not true"},
		{"client_key without tls", obj{"address": "cc:1", "tls_required": false, "client_key": p.clientKey}, []string{"client_key"}, "tls_required is not true"},
		{"client_cert without tls", obj{"address": "cc:1", "client_cert": p.clientCert}, []string{"client_cert"}, "tls_required is not true"},
		{"root_cert number", obj{"address": "cc:1", "tls_required": true, "root_cert": 5}, []string{"root_cert", "root_cert"}, "must be a string"},
		{"tls without root_cert", obj{"address": "cc:7052", "tls_required": true}, []string{"root_cert"}, "required when tls_required is true"},
		{"root_cert not pem", tls(obj{"root_cert": "MIIB..."}), []string{"root_cert"}, "no PEM certificate"},
		{"root_cert is a key", tls(obj{"root_cert": p.caKey}), []string{"root_cert"}, `"PRIVATE KEY", not CERTIFICATE`},
		{"root_cert expired", tls(obj{"root_cert": p.expiredCert}), []string{"root_cert"}, "expired"},
		{"root_cert with trailing text", tls(obj{"root_cert": p.caCert + "garbage"}), []string{"root_cert"}, "text after"},
		{"root_cert corrupt", tls(obj{"root_cert": strings.Replace(p.caCert, "\n", "\nAAAA", 3)}), []string{"root_cert"}, "PEM"},
		{"client_key without client auth", tls(obj{"client_key": p.clientKey}), []string{"client_key"}, "client_auth_required is not true"},
		{"client_cert without client auth", tls(obj{"client_cert": p.clientCert}), []string{"client_cert"}, "client_auth_required is not true"},
		{"client auth without key", mtls(obj{"client_key": ""}), []string{"client_key"}, "required when client_auth_required"},
		{"client auth without cert", mtls(obj{"client_cert": nil}), []string{"client_cert", "client_cert"}, "must be a string, not null"},
		{"client auth, cert missing", func() obj { o := mtls(nil); delete(o, "client_cert"); return o }(), []string{"client_cert"}, "required when client_auth_required"},
		{"client_key not pem", mtls(obj{"client_key": "secret"}), []string{"client_key"}, "no PEM private key"},
		{"client_key is a cert", mtls(obj{"client_key": p.clientCert}), []string{"client_key"}, `"CERTIFICATE", not a private key`},
		{"client_key encrypted", mtls(obj{"client_key": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"}), []string{"client_key"}, "encrypted"},
		{"client_key twice", mtls(obj{"client_key": p.clientKey + p.clientKey}), []string{"client_key"}, "more than one PEM block"},
		{"client_key corrupt", mtls(obj{"client_key": "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"}), []string{"client_key"}, "EC PRIVATE KEY"},
		{"client_cert not pem", mtls(obj{"client_cert": "cert"}), []string{"client_cert"}, "no PEM certificate"},
		{"client_cert expired", mtls(obj{"client_cert": p.expiredCert}), []string{"client_cert"}, "expired"},
		{"client key and cert do not match", mtls(obj{"client_key": p.otherKey}), []string{"client_key"}, "does not go with client_cert"},
		{"every problem at once", obj{"address": "cc", "dial_timeout": "soon", "tls_required": true, "extra": true},
			[]string{"extra", "address", "dial_timeout", "root_cert"}, "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var data []byte
			if s, ok := tt.in.(string); ok {
				data = []byte(s)
			} else {
				data = mustJSON(t, tt.in)
			}
			_, err := ParseConnection(data, time.Now())
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *ValidationError", err)
			}
			if ve.File != ConnectionFile {
				t.Errorf("File %q, want %q", ve.File, ConnectionFile)
			}
			var fields []string
			for _, p := range ve.Problems {
				fields = append(fields, p.Field)
			}
			if !slices.Equal(fields, tt.fields) {
				t.Errorf("problems name %q, want %q: %v", fields, tt.fields, err)
			}
			if !strings.Contains(ve.Problems[0].Detail, tt.detail) {
				t.Errorf("first problem %q does not say %q", ve.Problems[0].Detail, tt.detail)
			}
			if tt.fields[0] != "" && !strings.Contains(err.Error(), tt.fields[0]+": ") {
				t.Errorf("message %q does not name %s", err, tt.fields[0])
			}
		})
	}
}
