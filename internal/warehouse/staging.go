package warehouse

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/obolus/obolus/internal/warehouse/tcli"
)

// Staging follows the driver's protocol for PUT/GET/REMOVE on Unity Catalog
// volumes: the statement answers one row (operation, presigned URL, headers,
// local file) and the driver moves the bytes with plain HTTP to that URL,
// which this server serves itself.

const stagingPathPrefix = "/staging/"

// stagingURLLifetime bounds how long a presigned URL stays usable.
const stagingURLLifetime = 15 * time.Minute

type stagedFile struct {
	method  string // HTTP method the URL accepts
	path    string // local file
	expires time.Time
}

const sqlString = `'((?:[^']|'')*)'`

var (
	rePut    = regexp.MustCompile(`(?is)^\s*PUT\s+` + sqlString + `\s+INTO\s+` + sqlString + `(\s+OVERWRITE)?\s*;?\s*$`)
	reGet    = regexp.MustCompile(`(?is)^\s*GET\s+` + sqlString + `\s+TO\s+` + sqlString + `\s*;?\s*$`)
	reRemove = regexp.MustCompile(`(?is)^\s*REMOVE\s+` + sqlString + `\s*;?\s*$`)
)

func unquoteSQLString(s string) string { return strings.ReplaceAll(s, "''", "'") }

// volumeFile maps /Volumes/<catalog>/<schema>/<volume>/<file...> to a file
// under the volume root, refusing paths that would leave it.
func (s *Server) volumeFile(p string) (string, error) {
	clean := path.Clean(p)
	rel, found := strings.CutPrefix(clean, "/Volumes/")
	if !found || clean != p && clean+"/" != p {
		return "", fmt.Errorf("volume path %q: want /Volumes/<catalog>/<schema>/<volume>/<file>", p)
	}
	if len(strings.Split(rel, "/")) < 4 {
		return "", fmt.Errorf("volume path %q: want /Volumes/<catalog>/<schema>/<volume>/<file>", p)
	}
	return filepath.Join(s.volumeRoot, filepath.FromSlash(rel)), nil
}

// stagingStatement recognises PUT/GET/REMOVE statements and answers them.
func (s *Server) stagingStatement(q, baseURL string) (*execResult, bool, error) {
	var op, volume, local string
	overwrite := false
	switch {
	case rePut.MatchString(q):
		m := rePut.FindStringSubmatch(q)
		op, local, volume, overwrite = "PUT", unquoteSQLString(m[1]), unquoteSQLString(m[2]), m[3] != ""
	case reGet.MatchString(q):
		m := reGet.FindStringSubmatch(q)
		op, volume, local = "GET", unquoteSQLString(m[1]), unquoteSQLString(m[2])
	case reRemove.MatchString(q):
		m := reRemove.FindStringSubmatch(q)
		op, volume = "REMOVE", unquoteSQLString(m[1])
	default:
		return nil, false, nil
	}
	file, err := s.volumeFile(volume)
	if err != nil {
		return nil, true, err
	}
	_, statErr := os.Stat(file)
	method := http.MethodPut
	switch op {
	case "PUT":
		if statErr == nil && !overwrite {
			return nil, true, fmt.Errorf("PUT: %s already exists; add OVERWRITE to replace it", volume)
		}
	case "GET":
		if statErr != nil {
			return nil, true, fmt.Errorf("GET: %s: no such file in the volume", volume)
		}
		method = http.MethodGet
	case "REMOVE":
		method = http.MethodDelete
	}
	if baseURL == "" {
		return nil, true, errors.New("staging needs the server's URL; serve it over HTTP")
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return nil, true, fmt.Errorf("staging: generating URL: %w", err)
	}
	token := hex.EncodeToString(tok)
	s.mu.Lock()
	now := time.Now()
	for k, f := range s.staged {
		if now.After(f.expires) {
			delete(s.staged, k)
		}
	}
	s.staged[token] = &stagedFile{method: method, path: file, expires: now.Add(stagingURLLifetime)}
	s.mu.Unlock()

	url := baseURL + stagingPathPrefix + token
	str := func(name string) column {
		return column{name: name, typ: &duckType{base: "VARCHAR"}, kind: kindString, ttype: tcli.TTypeId_STRING_TYPE}
	}
	cols := []column{str("operation"), str("presignedUrl"), str("headers")}
	row := []any{op, url, "{}"}
	if op != "REMOVE" {
		cols = append(cols, str("localFile"))
		row = append(row, local)
	}
	return &execResult{columns: cols, cur: newStaticCursor(len(cols), [][]any{row}), staging: true}, true, nil
}

func (s *Server) serveStaging(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimPrefix(r.URL.Path, stagingPathPrefix)
	s.mu.Lock()
	f := s.staged[token]
	s.mu.Unlock()
	if f == nil || time.Now().After(f.expires) {
		http.Error(w, "warehouse: unknown or expired staging URL", http.StatusForbidden)
		return
	}
	if r.Method != f.method {
		w.Header().Set("Allow", f.method)
		http.Error(w, "warehouse: this staging URL accepts "+f.method, http.StatusMethodNotAllowed)
		return
	}
	switch r.Method {
	case http.MethodPut:
		if err := writeFileAtomic(f.path, r.Body); err != nil {
			http.Error(w, "warehouse: storing file: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	case http.MethodGet:
		http.ServeFile(w, r, f.path)
	case http.MethodDelete:
		if err := os.Remove(f.path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				http.Error(w, "warehouse: no such file", http.StatusNotFound)
				return
			}
			http.Error(w, "warehouse: removing file: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func writeFileAtomic(dst string, body io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".upload-*")
	if err != nil {
		return err
	}
	if _, err := io.Copy(tmp, body); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
