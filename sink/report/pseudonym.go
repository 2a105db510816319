package report

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// PseudonymKeyEnv names the environment variable holding the pseudonym key.
const PseudonymKeyEnv = "OBOLUS_PSEUDONYM_KEY"

// minPseudonymKey is the shortest key accepted: 16 bytes keeps a guessed key
// out of reach even for a short list of candidate emails.
const minPseudonymKey = 16

// Pseudonymizer replaces end users by a keyed hash, so chargeback can be
// shared without emails: u- and the first 20 hex digits (80 bits) of
// HMAC-SHA256(key, lower-cased trimmed email). Whoever holds the key recovers
// the person behind a pseudonym by hashing candidate emails and comparing;
// without the key neither direction is possible.
type Pseudonymizer struct {
	key []byte
}

// NewPseudonymizer uses key, which must be at least 16 bytes.
func NewPseudonymizer(key []byte) (*Pseudonymizer, error) {
	if len(key) < minPseudonymKey {
		return nil, fmt.Errorf("report: pseudonym key is %d bytes, want at least %d", len(key), minPseudonymKey)
	}
	return &Pseudonymizer{key: append([]byte(nil), key...)}, nil
}

// PseudonymizerFromEnv reads the key from OBOLUS_PSEUDONYM_KEY.
func PseudonymizerFromEnv() (*Pseudonymizer, error) {
	k := os.Getenv(PseudonymKeyEnv)
	if k == "" {
		return nil, errors.New("report: --pseudonymize needs a key in " + PseudonymKeyEnv + " (at least 16 bytes, e.g. `openssl rand -hex 32`); keep it secret: it is what links pseudonyms back to people")
	}
	return NewPseudonymizer([]byte(k))
}

// Pseudonym is user's pseudonym.
func (p *Pseudonymizer) Pseudonym(user string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(strings.ToLower(strings.TrimSpace(user))))
	return "u-" + hex.EncodeToString(m.Sum(nil))[:20]
}
