package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConnectWithSASLAndTLS checks that the stream's TLS and SASL settings
// reach a broker that demands them: kfake with SASL users and a TLS listener
// whose certificate is signed by a CA the test writes to a file.
func TestConnectWithSASLAndTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, serverTLS := testCA(t, dir)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.TLS(serverTLS),
		kfake.Superuser("PLAIN", "plain-user", "plain-pass"),
		kfake.Superuser("SCRAM-SHA-256", "scram-user", "scram-pass"),
		kfake.Superuser("SCRAM-SHA-512", "scram512", "pass512"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	base := ClientConfig{Brokers: c.ListenAddrs(), TLS: TLSFiles{Enabled: true, CAFile: caFile, ServerName: "localhost"}}
	tests := []struct {
		name       string
		sasl       SASLCredentials
		tls        bool
		wantToWork bool
	}{
		{"plain", SASLCredentials{Mechanism: "plain", Username: "plain-user", Password: "plain-pass"}, true, true},
		{"scram-sha-256", SASLCredentials{Mechanism: "scram-sha-256", Username: "scram-user", Password: "scram-pass"}, true, true},
		{"scram-sha-512", SASLCredentials{Mechanism: "SCRAM-SHA-512", Username: "scram512", Password: "pass512"}, true, true},
		{"wrong password", SASLCredentials{Mechanism: "plain", Username: "plain-user", Password: "nope"}, true, false},
		{"no TLS", SASLCredentials{Mechanism: "plain", Username: "plain-user", Password: "plain-pass"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			s.SASL = tt.sasl
			s.TLS.Enabled = tt.tls
			if !tt.tls {
				s.TLS = TLSFiles{}
			}
			o, err := NewOptions(s)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = EnsureTopics(ctx, o, 2, "t-"+tt.name[:4])
			if tt.wantToWork != (err == nil) {
				t.Errorf("EnsureTopics error = %v, want success %v", err, tt.wantToWork)
			}
			// franz-go's client, used for the alerts' transactions.
			cl, err := kgo.NewClient(o.KgoOpts()...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := cl.Ping(ctx); tt.wantToWork != (err == nil) {
				t.Errorf("franz-go Ping error = %v, want success %v", err, tt.wantToWork)
			}
		})
	}
}

func TestNewOptionsErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range []ClientConfig{
		{TLS: TLSFiles{Enabled: true, CAFile: filepath.Join(dir, "missing.pem")}},
		{TLS: TLSFiles{Enabled: true, CAFile: bad}},
		{TLS: TLSFiles{Enabled: true, CertFile: bad, KeyFile: bad}},
		{SASL: SASLCredentials{Mechanism: "gssapi"}},
	} {
		if _, err := NewOptions(s); err == nil {
			t.Errorf("NewOptions(%+v) succeeded, want an error", s)
		}
	}
}

// testCA writes a CA certificate to dir and returns its path and a server
// TLS configuration with a certificate for localhost and 127.0.0.1 it signed.
func testCA(t *testing.T, dir string) (string, *tls.Config) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, srvKey := key(), key()
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "obolus test CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}}}
}
