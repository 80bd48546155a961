package touchpoint

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"
)

// Token is what a touch link, a printed code or a WeChat scene carries: which touchpoint, and optionally which
// printed item (a serial number) and until when. Only its signed, encoded form ever leaves Hearth.
//
// The encoded form is base64url (no padding) of
//
//	header  1 byte: version 1 in the high nibble; bit 0 a serial follows, bit 1 an expiry follows
//	key     uvarint: the id of the signing key
//	number  uvarint: the touchpoint's number
//	serial  uvarint, if flagged
//	expiry  uvarint, if flagged: minutes since 2025-01-01 UTC
//	mac     8 bytes: HMAC-SHA256 of the bytes before it, under the signing key, truncated
//
// A typical token is 16 to 20 bytes, 22 to 27 characters; at most 32, so that it fits a WeChat scene string
// and a small QR code. A guess at the MAC succeeds with probability 2^-64.
type Token struct {
	KeyID   uint32
	Number  int64     // the touchpoint's number
	Serial  int64     // the printed item's serial number; 0 for none
	Expires time.Time // zero for never; kept to the minute
}

// MaxTokenLength is the longest encoded token.
const MaxTokenLength = 32

const (
	tokenVersion = 1
	flagSerial   = 1 << 0
	flagExpiry   = 1 << 1
	macSize      = 8
	// macDomain separates these MACs from anything else the keys might ever sign.
	macDomain = "hearth/touch/v1\x00"
)

// tokenEpoch is where expiry minutes count from: early enough for any token issued, late enough to keep the
// number short.
var tokenEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// encoding is strict: a string whose unused bits are not zero is refused, so that no token has two spellings.
var encoding = base64.RawURLEncoding.Strict()

// Errors of Verify. A caller shows the same friendly page for all of them; they differ for metrics and for
// the keyring, which reloads its keys when it meets an unknown one.
var (
	ErrMalformed  = errors.New("touchpoint: not a token")
	ErrForged     = errors.New("touchpoint: token signature does not match")
	ErrUnknownKey = errors.New("touchpoint: token signed with an unknown or retired key")
)

// Expired reports whether t has an expiry and it has passed at now.
func (t Token) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// appendBody appends the token's bytes before its MAC.
func (t Token) appendBody(dst []byte) ([]byte, error) {
	if t.KeyID == 0 || t.Number <= 0 || t.Serial < 0 {
		return nil, fmt.Errorf("touchpoint: token needs a key, a touchpoint number and no negative serial: %+v", t)
	}
	header := byte(tokenVersion << 4)
	if t.Serial > 0 {
		header |= flagSerial
	}
	var minutes int64
	if !t.Expires.IsZero() {
		if minutes = int64(t.Expires.Sub(tokenEpoch) / time.Minute); minutes < 0 || minutes >= 1<<27 {
			return nil, fmt.Errorf("touchpoint: token expiry %s is not between %s and 255 years later", t.Expires, tokenEpoch)
		}
		header |= flagExpiry
	}
	dst = append(dst, header)
	dst = binary.AppendUvarint(dst, uint64(t.KeyID))
	dst = binary.AppendUvarint(dst, uint64(t.Number))
	if t.Serial > 0 {
		dst = binary.AppendUvarint(dst, uint64(t.Serial))
	}
	if header&flagExpiry != 0 {
		dst = binary.AppendUvarint(dst, uint64(minutes))
	}
	return dst, nil
}

// parseBody reads the bytes before the MAC; it rejects any encoding but the one appendBody writes, so that a
// token has exactly one form.
func parseBody(b []byte) (Token, error) {
	if len(b) == 0 || b[0]>>4 != tokenVersion || b[0]&^(flagSerial|flagExpiry)&0x0f != 0 {
		return Token{}, ErrMalformed
	}
	header, rest := b[0], b[1:]
	next := func(max uint64) (uint64, bool) {
		v, n := binary.Uvarint(rest)
		if n <= 0 || v > max || n != uvarintLen(v) {
			return 0, false
		}
		rest = rest[n:]
		return v, true
	}
	var t Token
	key, ok := next(1<<32 - 1)
	if !ok || key == 0 {
		return Token{}, ErrMalformed
	}
	number, ok := next(1<<62 - 1)
	if !ok || number == 0 {
		return Token{}, ErrMalformed
	}
	t.KeyID, t.Number = uint32(key), int64(number)
	if header&flagSerial != 0 {
		serial, ok := next(1<<62 - 1)
		if !ok || serial == 0 {
			return Token{}, ErrMalformed
		}
		t.Serial = int64(serial)
	}
	if header&flagExpiry != 0 {
		minutes, ok := next(1<<27 - 1) // 255 years: within what a time.Duration holds
		if !ok {
			return Token{}, ErrMalformed
		}
		t.Expires = tokenEpoch.Add(time.Duration(minutes) * time.Minute)
	}
	if len(rest) != 0 {
		return Token{}, ErrMalformed
	}
	return t, nil
}

// uvarintLen is the length of v's shortest encoding; longer ones (with trailing zero groups) are refused.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// signingKey is one key of a keyring, with its HMAC states recycled: a verification costs two SHA-256
// blocks, not the four of setting up an HMAC.
type signingKey struct {
	id   uint32
	macs sync.Pool
}

func newSigningKey(id uint32, secret []byte) *signingKey {
	k := &signingKey{id: id}
	secret = append([]byte(nil), secret...)
	k.macs.New = func() any { return hmac.New(sha256.New, secret) }
	return k
}

// mac appends the MAC of body.
func (k *signingKey) mac(dst, body []byte) []byte {
	h := k.macs.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(macDomain))
	h.Write(body)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	k.macs.Put(h)
	return append(dst, sum[:macSize]...)
}

// Keyring signs and verifies tokens: the newest key signs; every key in it verifies. Retired keys are not in
// it. It is safe for concurrent use; Replace swaps its keys atomically.
type Keyring struct {
	mu     sync.RWMutex
	keys   map[uint32]*signingKey
	signer *signingKey
}

// KeySecret is a key's id and secret, as a keyring is built from.
type KeySecret struct {
	ID     uint32
	Secret []byte
}

// NewKeyring builds a keyring; the key with the highest id signs.
func NewKeyring(keys []KeySecret) *Keyring {
	r := &Keyring{}
	r.Replace(keys)
	return r
}

// Replace makes keys the keyring's keys.
func (r *Keyring) Replace(keys []KeySecret) {
	m := make(map[uint32]*signingKey, len(keys))
	var signer *signingKey
	for _, k := range keys {
		sk := newSigningKey(k.ID, k.Secret)
		m[k.ID] = sk
		if signer == nil || k.ID > signer.id {
			signer = sk
		}
	}
	r.mu.Lock()
	r.keys, r.signer = m, signer
	r.mu.Unlock()
}

// SignerID is the id of the key that signs, 0 when the keyring is empty.
func (r *Keyring) SignerID() uint32 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.signer == nil {
		return 0
	}
	return r.signer.id
}

// Sign encodes t, signed with the signing key (t.KeyID is set to it).
func (r *Keyring) Sign(t Token) (string, error) {
	id := r.SignerID()
	if id == 0 {
		return "", errors.New("touchpoint: no signing key")
	}
	return r.signWith(id, t)
}

// has reports whether the keyring holds the key id.
func (r *Keyring) has(id uint32) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.keys[id] != nil
}

// signWith encodes t signed with the key id rather than the newest key: a code batch's tokens are fixed when
// the batch is created, whatever keys were made since.
func (r *Keyring) signWith(id uint32, t Token) (string, error) {
	r.mu.RLock()
	k := r.keys[id]
	r.mu.RUnlock()
	if k == nil {
		return "", fmt.Errorf("touchpoint: sign with key %d: %w", id, ErrUnknownKey)
	}
	t.KeyID = id
	var buf [32]byte
	b, err := t.appendBody(buf[:0])
	if err != nil {
		return "", err
	}
	s := encoding.EncodeToString(k.mac(b, b))
	if len(s) > MaxTokenLength {
		return "", fmt.Errorf("touchpoint: token of %d characters, over %d: number %d, serial %d", len(s), MaxTokenLength, t.Number, t.Serial)
	}
	return s, nil
}

// Verify decodes a token and checks its signature. It does not look at the expiry: see Token.Expired.
func (r *Keyring) Verify(s string) (Token, error) {
	if len(s) < 8 || len(s) > MaxTokenLength {
		return Token{}, ErrMalformed
	}
	for i := 0; i < len(s); i++ { // the decoder would skip line breaks
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return Token{}, ErrMalformed
		}
	}
	var buf [MaxTokenLength]byte
	n, err := encoding.Decode(buf[:], []byte(s))
	if err != nil || n <= macSize {
		return Token{}, ErrMalformed
	}
	body, mac := buf[:n-macSize], buf[n-macSize:n]
	t, err := parseBody(body)
	if err != nil {
		return Token{}, err
	}
	r.mu.RLock()
	k := r.keys[t.KeyID]
	r.mu.RUnlock()
	if k == nil {
		return Token{}, ErrUnknownKey
	}
	var want [macSize]byte
	if !hmac.Equal(k.mac(want[:0], body), mac) {
		return Token{}, ErrForged
	}
	return t, nil
}
