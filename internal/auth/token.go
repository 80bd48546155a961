package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// newToken returns a random URL-safe secret with 256 bits of entropy.
func newToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails: crypto/rand panics rather than return a short read
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is how secrets (session tokens, API keys, setup tokens) are stored: their SHA-256. They are random
// and long, so a fast hash is enough; a database leak does not leak usable credentials.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
