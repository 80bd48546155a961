package touchpoint

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hearth-cdp/hearth"
)

// MasterKey seals the secrets Hearth keeps in its store (the token signing keys, providers' app secrets), so
// that a copy of the database alone gives none of them away. It comes from HEARTH_MASTER_KEY, or else from
// the file master.key in the data folder, made at first start.
type MasterKey struct{ aead cipher.AEAD }

// MasterKeyFile is the master key's file name in the data folder.
const MasterKeyFile = "master.key"

// ParseMasterKey reads a master key written as 32 bytes in base64 (standard or URL alphabet) or hex.
func ParseMasterKey(s string) (MasterKey, error) {
	s = strings.TrimSpace(s)
	var key []byte
	var err error
	switch {
	case len(s) == 64:
		key, err = hex.DecodeString(s)
	case strings.ContainsAny(s, "-_"):
		key, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	default:
		key, err = base64.StdEncoding.DecodeString(s)
	}
	if err != nil || len(key) != 32 {
		return MasterKey{}, hearth.Errorf(hearth.Invalid, "touchpoint.master_key", "the master key must be 32 random bytes in base64 or hex (for example from: openssl rand -base64 32)")
	}
	return newMasterKey(key)
}

func newMasterKey(key []byte) (MasterKey, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return MasterKey{}, fmt.Errorf("touchpoint: master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return MasterKey{}, fmt.Errorf("touchpoint: master key: %w", err)
	}
	return MasterKey{aead: aead}, nil
}

// LoadMasterKey reads dir/master.key, or makes it (readable by its owner only) when there is none; created
// says which.
func LoadMasterKey(dir string) (key MasterKey, created bool, err error) {
	path := filepath.Join(dir, MasterKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := ParseMasterKey(string(b))
		if err != nil {
			return MasterKey{}, false, &hearth.Error{Kind: hearth.Invalid, Op: "touchpoint.master_key", Msg: fmt.Sprintf("The master key file %s is damaged: it must hold 32 bytes in base64.", path), Err: err}
		}
		return k, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return MasterKey{}, false, fmt.Errorf("touchpoint: read master key: %w", err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return MasterKey{}, false, fmt.Errorf("touchpoint: master key: %w", err)
	}
	// O_EXCL: when two processes start at once on a new folder, one makes the key and the other reads it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadMasterKey(dir)
	}
	if err != nil {
		return MasterKey{}, false, fmt.Errorf("touchpoint: create master key: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(raw) + "\n")
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return MasterKey{}, false, fmt.Errorf("touchpoint: write master key: %w", err)
	}
	k, err := newMasterKey(raw)
	return k, true, err
}

// Seal encrypts and authenticates plaintext; purpose binds it to what it is for (Open needs the same).
func (m MasterKey) Seal(plaintext []byte, purpose string) []byte {
	nonce := make([]byte, m.aead.NonceSize(), m.aead.NonceSize()+len(plaintext)+m.aead.Overhead())
	rand.Read(nonce)
	return m.aead.Seal(nonce, nonce, plaintext, []byte(purpose))
}

// Open decrypts what Seal sealed for the same purpose. It fails when the master key is not the one that
// sealed it.
func (m MasterKey) Open(sealed []byte, purpose string) ([]byte, error) {
	n := m.aead.NonceSize()
	if len(sealed) < n+m.aead.Overhead() {
		return nil, errors.New("touchpoint: sealed secret too short")
	}
	b, err := m.aead.Open(nil, sealed[:n], sealed[n:], []byte(purpose))
	if err != nil {
		return nil, &hearth.Error{Kind: hearth.Invalid, Op: "touchpoint.open_secret",
			Msg: "The master key does not open the secrets in the store: HEARTH_MASTER_KEY (or master.key in the data folder) is not the one they were sealed with.", Err: err}
	}
	return b, nil
}
