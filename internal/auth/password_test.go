package auth_test

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/hearth-cdp/hearth/internal/auth"
)

const testPassword = "correct horse battery"

// testHash is one real hash of testPassword, made once: hashing costs tens of milliseconds.
var testHash = sync.OnceValue(func() string {
	h, err := auth.HashPassword(testPassword)
	if err != nil {
		panic(err)
	}
	return h
})

// hashParts splits a PHC string into its parameters, salt and key.
func hashParts(t testing.TB, hash string) (params, salt, key string) {
	t.Helper()
	p := strings.Split(hash, "$")
	if len(p) != 6 {
		t.Fatalf("hash %q does not have 6 parts", hash)
	}
	return p[3], p[4], p[5]
}

var phc = regexp.MustCompile(`\A\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}\z`)

func TestHashPassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		password string
		wrong    []string
	}{
		{"ascii", testPassword, []string{"correct horse battery ", "Correct horse battery", "correct horse batter", ""}},
		{"empty", "", []string{" ", "\x00"}},
		{"unicode", "密码密码密码密码密码", []string{"密码密码密码密码密", "密码密码密码密码密码密"}},
		{"separators inside", "a$b$c$d$e$f", []string{"a$b$c$d$e"}},
		{"long", strings.Repeat("x", 1024), []string{strings.Repeat("x", 1023), strings.Repeat("x", 1025)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hash, err := auth.HashPassword(tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if !phc.MatchString(hash) {
				t.Errorf("hash %q is not argon2id at the expected cost in PHC form", hash)
			}
			if strings.Contains(hash, tt.password) && tt.password != "" {
				t.Errorf("hash %q contains the password", hash)
			}
			if !auth.CheckPassword(hash, tt.password) {
				t.Error("the password does not match its own hash")
			}
			for _, w := range tt.wrong {
				if auth.CheckPassword(hash, w) {
					t.Errorf("the wrong password %q matches", w)
				}
			}
		})
	}
}

func TestHashPasswordSalts(t *testing.T) {
	t.Parallel()
	h1, h2 := testHash(), must(auth.HashPassword(testPassword))
	if h1 == h2 {
		t.Fatalf("two hashes of one password are the same: %q", h1)
	}
	_, salt1, _ := hashParts(t, h1)
	_, salt2, _ := hashParts(t, h2)
	if salt1 == salt2 {
		t.Errorf("two hashes share the salt %q", salt1)
	}
	if !auth.CheckPassword(h2, testPassword) {
		t.Error("the second hash does not match")
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// flip changes the first character of a base64 field, which changes its decoded bytes. (Changing the last
// character may not: its low bits are padding that the decoder ignores.)
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// A changed hash never matches the right password.
func TestCheckPasswordTamperedHash(t *testing.T) {
	t.Parallel()
	hash := testHash()
	params, salt, key := hashParts(t, hash)
	tests := []struct {
		name string
		hash string
	}{
		{"key changed", "$argon2id$v=19$" + params + "$" + salt + "$" + flip(key)},
		{"salt changed", "$argon2id$v=19$" + params + "$" + flip(salt) + "$" + key},
		{"key truncated", "$argon2id$v=19$" + params + "$" + salt + "$" + key[:len(key)-4]},
		{"key empty", "$argon2id$v=19$" + params + "$" + salt + "$"},
		// Not 19457: argon2 rounds memory down to a multiple of 4 blocks per lane, so that is the same cost.
		{"more memory", "$argon2id$v=19$m=19460,t=2,p=1$" + salt + "$" + key},
		{"fewer passes", "$argon2id$v=19$m=19456,t=1,p=1$" + salt + "$" + key},
		{"more lanes", "$argon2id$v=19$m=19456,t=2,p=2$" + salt + "$" + key},
		{"argon2i", "$argon2i$v=19$" + params + "$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$" + params + "$" + salt + "$" + key},
		{"older version", "$argon2id$v=16$" + params + "$" + salt + "$" + key},
		{"no version", "$argon2id$" + params + "$" + salt + "$" + key},
		{"extra part", hash + "$" + key},
		{"no leading $", strings.TrimPrefix(hash, "$")},
		{"base64 with padding", hash + "="},
		{"salt not base64", "$argon2id$v=19$" + params + "$" + salt + "!$" + key},
		{"empty", ""},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"the password itself", testPassword},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if auth.CheckPassword(tt.hash, testPassword) {
				t.Errorf("CheckPassword(%q) accepted the password", tt.hash)
			}
		})
	}
}

// maxCheckAlloc is the most one CheckPassword may allocate, whatever the hash says. Hashes made by
// HashPassword cost 19 MiB; a stored hash that asks for gigabytes must be refused before argon2 runs.
const maxCheckAlloc = 512 << 20

// checkAllocates calls CheckPassword and returns what it allocated.
func checkAllocates(hash, password string) (ok bool, bytes uint64) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ok = auth.CheckPassword(hash, password)
	runtime.ReadMemStats(&after)
	return ok, after.TotalAlloc - before.TotalAlloc
}

// A hash with absurd cost parameters is refused, without costing what it asks for, and without a panic.
// Not parallel: it measures the process's allocations.
func TestCheckPasswordBoundsCost(t *testing.T) {
	_, salt, key := hashParts(t, testHash())
	tests := []struct {
		name   string
		params string
	}{
		{"1 GiB of memory", "m=1048576,t=1,p=1"},
		{"4 GiB of memory", "m=4194304,t=2,p=1"},
		{"largest uint32 memory", "m=4294967295,t=2,p=1"},
		{"memory beyond uint32", "m=4294967296,t=2,p=1"},
		{"negative memory", "m=-1,t=2,p=1"},
		{"no memory", "m=0,t=2,p=1"},
		{"a million passes", "m=19456,t=1000000,p=1"},
		{"no passes", "m=19456,t=0,p=1"},
		{"no lanes", "m=19456,t=2,p=0"},
		{"lanes beyond uint8", "m=19456,t=2,p=256"},
		{"most lanes", "m=19456,t=2,p=255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash := "$argon2id$v=19$" + tt.params + "$" + salt + "$" + key
			ok, n := checkAllocates(hash, testPassword)
			if ok {
				t.Errorf("CheckPassword(%q) accepted the password", hash)
			}
			if n > maxCheckAlloc {
				t.Errorf("CheckPassword(%q) allocated %d MiB, want at most %d MiB: its cost bounds let a hash ask for too much memory",
					hash, n>>20, maxCheckAlloc>>20)
			}
		})
	}
}

// keyLen is the length of a PHC string's decoded key, or 0.
func keyLen(hash string) int {
	p := strings.Split(hash, "$")
	key, err := base64.RawStdEncoding.DecodeString(p[len(p)-1])
	if err != nil {
		return 0
	}
	return len(key)
}

func FuzzCheckPassword(f *testing.F) {
	hash := testHash()
	params, salt, key := hashParts(f, hash)
	f.Add(hash, testPassword)
	f.Add(hash, "wrong password")
	f.Add(hash, "")
	f.Add("", "")
	f.Add("$", testPassword)
	f.Add("$$$$$", testPassword)
	f.Add("$argon2id$", testPassword)
	f.Add("$argon2id$v=19$"+params+"$"+salt+"$", testPassword) // empty key: must not compare two empty slices
	f.Add("$argon2id$v=19$"+params+"$$"+key, testPassword)
	f.Add("$argon2i$v=19$"+params+"$"+salt+"$"+key, testPassword)
	f.Add("$argon2id$v=19$m=4294967295,t=2,p=1$"+salt+"$"+key, testPassword)
	f.Add("$argon2id$v=19$m=99999999999,t=2,p=1$"+salt+"$"+key, testPassword)
	f.Add("$argon2id$v=19$m=19456,t=4294967295,p=1$"+salt+"$"+key, testPassword)
	f.Add("$argon2id$v=19$m=19456,t=0,p=0$"+salt+"$"+key, testPassword)
	f.Add("$argon2id$v=19$m=8,t=1,p=255$"+salt+"$"+key, testPassword)
	f.Add("$argon2id$v=19$m=1,t=1,p=1$c2FsdA$AAAA", "")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$"+salt+"$"+strings.Repeat("A", 200), testPassword)
	f.Add(fmt.Sprintf("$argon2id$v=%d$%s$%s$%s", 1<<40, params, salt, key), testPassword)
	f.Fuzz(func(t *testing.T, hash, password string) {
		ok, n := checkAllocates(hash, password)
		// A hash with a key of a few bytes may really match another password (the fuzzer could find one by
		// trying); with 16 bytes or more, only the password it was made for can.
		if ok && password != testPassword && keyLen(hash) >= 16 {
			t.Fatalf("CheckPassword(%q, %q) accepted a password the hash was not made for", hash, password)
		}
		if n > maxCheckAlloc {
			t.Fatalf("CheckPassword(%q) allocated %d MiB", hash, n>>20)
		}
	})
}
