package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
)

// The admin API's body decoder sits at a trust boundary: whatever arrives, it answers a value whose text
// both engines can store, or an Invalid or TooLarge error, and never panics.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"name":"Website","kind":"website"}`, `{"name":`, `[]`, `null`, `{"name":"x"}{"name":"y"}`,
		`{"name":1}`, `{"unknown":true}`, "", `{"name":"\u0000"}`, `{"name":"\ud800"}`, "{\"name\":\"\xff\"}", `{"name":"` + strings.Repeat("a", 100) + `"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var v struct {
			Name string `json:"name"`
			Kind string `json:"kind"`
		}
		r := httptest.NewRequest("POST", "/api/v1/sources", strings.NewReader(body))
		err := decode(httptest.NewRecorder(), r, &v)
		if err == nil {
			for _, s := range []string{v.Name, v.Kind} {
				if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
					t.Fatalf("decode(%q) gave %q, which PostgreSQL refuses", body, s)
				}
			}
			return
		}
		if k := hearth.KindOf(err); k != hearth.Invalid && k != hearth.TooLarge {
			t.Fatalf("decode(%q) = %v, kind %v; want Invalid or TooLarge", body, err, k)
		}
		if hearth.MessageOf(err) == "" {
			t.Fatalf("decode(%q): no message for the user", body)
		}
	})
}
