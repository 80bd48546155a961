package touchpoint

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func testKeyring() *Keyring {
	return NewKeyring([]KeySecret{{ID: 1, Secret: bytes.Repeat([]byte{1}, 32)}, {ID: 2, Secret: bytes.Repeat([]byte{2}, 32)}})
}

func TestTokenRoundTrip(t *testing.T) {
	r := testKeyring()
	expires := time.Date(2027, 3, 1, 12, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		tok  Token
	}{
		{"touchpoint only", Token{Number: 1}},
		{"large number", Token{Number: 2_000_000}},
		{"serial", Token{Number: 42, Serial: 10_000}},
		{"expiry", Token{Number: 42, Expires: expires}},
		{"serial and expiry", Token{Number: 123_456, Serial: 99_999, Expires: expires}},
		{"largest that fits", Token{Number: 1 << 34, Serial: 1 << 34, Expires: expires}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := r.Sign(tc.tok)
			if err != nil {
				t.Fatal(err)
			}
			if len(s) > MaxTokenLength || strings.ContainsAny(s, "+/=") {
				t.Errorf("token %q: %d characters, or not URL-safe", s, len(s))
			}
			got, err := r.Verify(s)
			if err != nil {
				t.Fatalf("verify %q: %v", s, err)
			}
			want := tc.tok
			want.KeyID = 2 // the newest key signs
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestTokenTypicalLength(t *testing.T) {
	s, err := testKeyring().Sign(Token{Number: 5000, Serial: 10_000, Expires: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if len(s) > 27 {
		t.Errorf("a touchpoint in the thousands with a serial and an expiry takes %d characters: %s", len(s), s)
	}
}

func TestTokenTooLong(t *testing.T) {
	if _, err := testKeyring().Sign(Token{Number: math.MaxInt64 >> 2, Serial: math.MaxInt64 >> 2}); err == nil {
		t.Error("a token over 32 characters was issued")
	}
}

func TestTokenRefused(t *testing.T) {
	r := testKeyring()
	good, err := r.Sign(Token{Number: 7, Serial: 3})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := encoding.DecodeString(good)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return encoding.EncodeToString(b)
	}
	other := NewKeyring([]KeySecret{{ID: 2, Secret: bytes.Repeat([]byte{9}, 32)}})
	forgedElsewhere, _ := other.Sign(Token{Number: 7, Serial: 3})
	unknown := NewKeyring([]KeySecret{{ID: 3, Secret: bytes.Repeat([]byte{3}, 32)}})
	unknownKey, _ := unknown.Sign(Token{Number: 7})
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", ErrMalformed},
		{"short", "abc", ErrMalformed},
		{"too long", good + good, ErrMalformed},
		{"not base64", strings.Repeat("*", 20), ErrMalformed},
		{"padding", good + "=", ErrMalformed},
		{"number changed", flip(2), ErrForged},
		{"serial changed", flip(3), ErrForged},
		{"mac changed", flip(len(raw) - 1), ErrForged},
		{"another installation's key", forgedElsewhere, ErrForged},
		{"unknown key", unknownKey, ErrUnknownKey},
		{"version changed", flip(0) /* version 1 -> 0x11: a flag bit that is not defined */, ErrMalformed},
		{"dropped mac byte", encoding.EncodeToString(raw[:len(raw)-1]), ErrMalformed}, // the body then ends in a MAC byte
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.Verify(tc.token); !errors.Is(err, tc.want) {
				t.Errorf("Verify(%q) = %v, want %v", tc.token, err, tc.want)
			}
		})
	}
}

// A token stays valid through a rotation until its key is retired.
func TestKeyRotation(t *testing.T) {
	one := KeySecret{ID: 1, Secret: bytes.Repeat([]byte{1}, 32)}
	two := KeySecret{ID: 2, Secret: bytes.Repeat([]byte{2}, 32)}
	r := NewKeyring([]KeySecret{one})
	old, err := r.Sign(Token{Number: 9})
	if err != nil {
		t.Fatal(err)
	}
	r.Replace([]KeySecret{one, two})
	if r.SignerID() != 2 {
		t.Errorf("signer %d after rotation, want 2", r.SignerID())
	}
	if _, err := r.Verify(old); err != nil {
		t.Errorf("a token of the previous key: %v", err)
	}
	r.Replace([]KeySecret{two})
	if _, err := r.Verify(old); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("a token of a retired key: %v, want ErrUnknownKey", err)
	}
}

func TestTokenExpired(t *testing.T) {
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	tok := Token{Expires: at}
	if tok.Expired(at.Add(-time.Second)) || !tok.Expired(at) || (Token{}).Expired(at.AddDate(100, 0, 0)) {
		t.Error("expiry is wrong")
	}
}

// FuzzVerify: no input panics, and whatever verifies signs back to itself (one spelling per token).
func FuzzVerify(f *testing.F) {
	r := testKeyring()
	for _, tok := range []Token{{Number: 1}, {Number: 300, Serial: 5}, {Number: 7, Expires: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}} {
		s, _ := r.Sign(tok)
		f.Add(s)
	}
	f.Add("AAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := r.Verify(s)
		if err != nil {
			return
		}
		again, err := r.Sign(tok)
		if err != nil || again != s {
			t.Fatalf("%q verifies as %+v, which signs as %q (%v)", s, tok, again, err)
		}
	})
}

// FuzzParseBody: a body that parses encodes back to itself.
func FuzzParseBody(f *testing.F) {
	f.Add([]byte{0x10, 1, 1})
	f.Add([]byte{0x13, 2, 0x80, 0x01, 5, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := parseBody(b)
		if err != nil {
			return
		}
		again, err := tok.appendBody(nil)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%x parses as %+v, which encodes as %x (%v)", b, tok, again, err)
		}
	})
}

// BenchmarkVerify measures what a redirect spends on a token (the target is at most 2 us).
func BenchmarkVerify(b *testing.B) {
	r := testKeyring()
	s, _ := r.Sign(Token{Number: 12_345, Serial: 6789, Expires: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Verify(s); err != nil {
			b.Fatal(err)
		}
	}
}
