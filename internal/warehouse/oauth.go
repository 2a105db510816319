package warehouse

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"
)

// The workspace's OAuth token endpoint for service principals (OAuth M2M):
// a client-credentials grant at /oidc/v1/token answers a bearer token that
// the SQL endpoints accept until it expires.
// https://docs.databricks.com/en/dev-tools/auth/oauth-m2m.html

const (
	tokenPath       = "/oidc/v1/token"
	defaultTokenTTL = time.Hour
	// CallToken counts the OAuth tokens issued, for Calls.
	CallToken = "OAuth token"
)

func (s *Server) tokenTTL() time.Duration {
	if s.cfg.TokenTTL > 0 {
		return s.cfg.TokenTTL
	}
	return defaultTokenTTL
}

// oauthError answers as RFC 6749 section 5.2 says.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="oidc"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// serveToken issues an access token for a client-credentials grant. The
// client authenticates with HTTP Basic or with client_id and client_secret
// in the form (RFC 6749 section 2.3.1); the scope must be all-apis or absent.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	if sc := r.PostForm.Get("scope"); sc != "" && sc != "all-apis" {
		oauthError(w, http.StatusBadRequest, "invalid_scope", "use scope all-apis")
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	want, known := s.cfg.OAuthClients[id]
	if !known || id == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "cannot make a token")
		return
	}
	tok := "dapi-oauth-" + hex.EncodeToString(raw[:])
	ttl := s.tokenTTL()
	now := time.Now()
	s.mu.Lock()
	for t, exp := range s.tokens {
		if now.After(exp) {
			delete(s.tokens, t)
		}
	}
	s.tokens[tok] = now.Add(ttl)
	s.calls[CallToken]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(ttl / time.Second),
		"scope":        "all-apis",
	})
}

// issuedTokenValid reports whether tok is a token this server issued that
// has not expired.
func (s *Server) issuedTokenValid(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}
