package wechat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/hearth-cdp/hearth"
)

func TestDecryptVector(t *testing.T) {
	got, err := Decrypt(vectorKey, vectorAppID, vectorEncrypted)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != vectorMessage {
		t.Errorf("Decrypt = %s", got)
	}
	key, _ := aesKey(vectorKey)
	prefix := bytes.NewReader([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	enc, err := encrypt(key, vectorAppID, []byte(vectorMessage), prefix)
	if err != nil {
		t.Fatal(err)
	}
	if enc != vectorEncrypted {
		t.Errorf("encrypt with the vector's prefix = %s, want the vector", enc)
	}
}

// sealRaw encrypts plain as WeChat would, but with no checks, so that tests can make malformed messages.
func sealRaw(t *testing.T, plain []byte) string {
	t.Helper()
	key, _ := aesKey(vectorKey)
	block, _ := aes.NewCipher(key)
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(out, plain)
	return base64.StdEncoding.EncodeToString(out)
}

// payload builds random | length | msg | appid with PKCS#7 padding to 32, the length field as given.
func payload(length uint32, msg, appID string, pad int) []byte {
	b := make([]byte, 20, 20+len(msg)+len(appID)+pad)
	binary.BigEndian.PutUint32(b[16:], length)
	b = append(b, msg...)
	b = append(b, appID...)
	return append(b, bytes.Repeat([]byte{byte(pad)}, pad)...)
}

func TestDecryptRefuses(t *testing.T) {
	// 20 + 4 + 18 = 42 bytes, so 22 bytes of padding make 64.
	good := payload(4, "body", vectorAppID, 22)
	if _, err := Decrypt(vectorKey, vectorAppID, sealRaw(t, good)); err != nil {
		t.Fatalf("the well-formed payload does not decrypt: %v", err)
	}
	badPad := payload(4, "body", vectorAppID, 22)
	badPad[50] = 21
	tampered := []byte(vectorEncrypted)
	tampered[len(tampered)-10] ^= 1

	tests := []struct {
		name, key, appID, encrypted string
	}{
		{"another app id", vectorKey, "wx0000000000000000", vectorEncrypted},
		{"another key", strings.Repeat("A", 43), vectorAppID, vectorEncrypted},
		{"not base64", vectorKey, vectorAppID, "not base64!"},
		{"empty", vectorKey, vectorAppID, ""},
		{"one block", vectorKey, vectorAppID, base64.StdEncoding.EncodeToString(make([]byte, 16))},
		{"not whole blocks", vectorKey, vectorAppID, base64.StdEncoding.EncodeToString(make([]byte, 40))},
		{"tampered last block", vectorKey, vectorAppID, string(tampered)},
		{"padding bytes differ", vectorKey, vectorAppID, sealRaw(t, badPad)},
		{"padding 0", vectorKey, vectorAppID, sealRaw(t, payload(4, "body", vectorAppID+strings.Repeat("x", 21)+"\x00", 0))},
		{"padding over 32", vectorKey, vectorAppID, sealRaw(t, append(payload(4, "body", vectorAppID, 22)[:42], bytes.Repeat([]byte{33}, 22)...))},
		{"length beyond the message", vectorKey, vectorAppID, sealRaw(t, payload(1000, "body", vectorAppID, 22))},
		{"length of 4 GiB", vectorKey, vectorAppID, sealRaw(t, payload(0xffffffff, "body", vectorAppID, 22))},
		{"bad key", "short", vectorAppID, vectorEncrypted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decrypt(tt.key, tt.appID, tt.encrypted)
			if err == nil {
				t.Fatalf("Decrypt = %q, want an error", got)
			}
			if hearth.KindOf(err) != hearth.Invalid {
				t.Errorf("kind = %v, want invalid: %v", hearth.KindOf(err), err)
			}
		})
	}
}

func TestValidateEncodingAESKey(t *testing.T) {
	tests := []struct {
		name, key string
		ok        bool
	}{
		{"WeChat's sample", vectorKey, true},
		{"last character with low bits set", strings.Repeat("a", 42) + "z", true},
		{"plus and slash", strings.Repeat("+/", 21) + "A", true},
		{"42 characters", vectorKey[:42], false},
		{"44 characters", vectorKey + "A", false},
		{"with padding", vectorKey[:42] + "=", false},
		{"URL-safe alphabet", strings.Repeat("-_", 21) + "A", false},
		{"a space", vectorKey[:42] + " ", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateEncodingAESKey(tt.key)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateEncodingAESKey = %v, want ok %v", err, tt.ok)
			}
			if err != nil && hearth.KindOf(err) != hearth.Invalid {
				t.Errorf("kind = %v, want invalid", hearth.KindOf(err))
			}
		})
	}
}

// keyFrom makes a valid EncodingAESKey from any bytes.
func keyFrom(seed []byte) string {
	var raw [32]byte
	copy(raw[:], seed)
	return base64.StdEncoding.EncodeToString(raw[:])[:EncodingAESKeyLen]
}

// Decrypt never panics on what an attacker can send, and undoes Encrypt.
func FuzzDecrypt(f *testing.F) {
	f.Add([]byte("seed"), vectorAppID, []byte(vectorMessage), vectorEncrypted)
	f.Add([]byte{}, "", []byte{}, "")
	f.Add([]byte{1}, "wx", []byte("x"), base64.StdEncoding.EncodeToString(make([]byte, 32)))
	f.Add([]byte{2}, "wx", bytes.Repeat([]byte("a"), 1000), "AAAA")
	f.Fuzz(func(t *testing.T, seed []byte, appID string, msg []byte, encrypted string) {
		key := keyFrom(seed)
		if got, err := Decrypt(key, appID, encrypted); err != nil {
			if k := hearth.KindOf(err); k != hearth.Invalid {
				t.Fatalf("error of kind %v: %v", k, err)
			}
		} else if len(got) > len(encrypted) {
			t.Fatalf("decrypted %d bytes out of %d", len(got), len(encrypted))
		}
		sealed, err := Encrypt(key, appID, msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decrypt(key, appID, sealed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("Decrypt(Encrypt(%q)) = %q", msg, got)
		}
		if raw, _ := base64.StdEncoding.DecodeString(sealed); len(raw)%32 != 0 {
			t.Fatalf("%d encrypted bytes are not padded to 32", len(raw))
		}
	})
}
