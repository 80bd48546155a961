package collect

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/hearth-cdp/hearth"
)

// Differential tests: event.go's reader against the reference implementation in reference_test.go.

func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("payload %q: %v", b, err)
	}
	return v
}

func sameEvent(t *testing.T, a, b Event) {
	t.Helper()
	pa, pb := a.Payload, b.Payload
	a.Payload, b.Payload = nil, nil
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("events differ:\nold %+v\nnew %+v", a, b)
	}
	va, vb := decodeAny(t, pa), decodeAny(t, pb)
	if !reflect.DeepEqual(va, vb) {
		t.Fatalf("payloads differ:\nold %s\nnew %s", pa, pb)
	}
}

func reqFor(flags byte, ctx, sentAt, integ string) Request {
	req := testReq()
	req.Browser = flags&1 != 0
	if flags&2 != 0 {
		req.IP = ""
	}
	if flags&4 != 0 {
		req.UserAgent = "Googlebot \xff"
	}
	if flags&8 != 0 {
		req.Context = json.RawMessage(ctx)
	}
	if flags&16 != 0 {
		req.SentAt = json.RawMessage(sentAt)
	}
	if flags&32 != 0 {
		req.Integrations = json.RawMessage(integ)
	}
	return req
}

func FuzzDiffNormalize(f *testing.F) {
	for _, seed := range []string{
		`{"type":"track","userId":"u","event":"x","properties":{"a":1},"context":{"ip":"1.2.3.4"}}`,
		`{"anonymousId":"a","context":{}}`, `{"userId":1e400}`, `{"userId":"u","timestamp":"2026-01-01T00:00:00Z","sentAt":"1999-01-01T00:00:00Z"}`,
		`{"userId":"u","context":{ "x" : 1 }}`, `{"userId":"u","context":{"userAgent":null}}`, `null`, `"x"`, `{"userId":"\ud800"}`,
		`{"TYPE":"page","uſerId":" u ","Context":{"IP":"x","ip":null},"properties":{ "a" : [1, 2] }}`,
		`{"type":"track","userId":"u","event":"\u4e0b\u5355","timestamp":"0000-01-01T00:00:00+01:00"}`,
		`{"type":5,"writeKey":[],"userId":"u"}`, `{"type":"identify","userId":"u","traits":{"<a>":"\u2028"},"integrations":{"All":false}}`,
	} {
		f.Add(seed, "track", byte(0), `{"library":{"name":"x"}}`, `"2026-01-01T00:00:10Z"`, `{"x":true}`)
		f.Add(seed, "", byte(63), `{"ip":"9.9.9.9"}`, `"2026-01-01T00:00:10Z"`, `5`)
	}
	f.Fuzz(func(t *testing.T, in, typ string, flags byte, ctx, sentAt, integ string) {
		req := reqFor(flags, ctx, sentAt, integ)
		a, errA := refNormalizeEvent([]byte(in), typ, req, fixedID, noBots)
		b, errB := Normalize([]byte(in), typ, req, fixedID, noBots)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("old err %v, new err %v", errA, errB)
		}
		if errA != nil {
			if hearth.MessageOf(errA) != hearth.MessageOf(errB) || hearth.KindOf(errB) != hearth.Invalid {
				t.Fatalf("old %q, new %q", hearth.MessageOf(errA), hearth.MessageOf(errB))
			}
			return
		}
		sameEvent(t, a, b)
	})
}

var endpointTypes = []string{"batch", "track", "identify", "page", "screen", "group", "alias"}

func FuzzDiffBody(f *testing.F) {
	f.Add([]byte(benchBatch(3)), byte(0), byte(0))
	f.Add([]byte(`{"batch":[{"type":"track","userId":"u","event":"x"},null,5,{"type":"x"}],"context":{"ip":"1"},"integrations":5,"sentAt":"2026-01-01T00:00:00Z","writeKey":"k"}`), byte(0), byte(1))
	f.Add([]byte(`{"Batch":[],"BATCH":null,"writeKey":null,"wRiteKey":"a\u00e9"}`), byte(0), byte(1))
	f.Add([]byte(`{"userId":"u","event":"x","writeKey":"w"} `), byte(1), byte(1))
	f.Add([]byte(` [1] `), byte(2), byte(0))
	f.Add([]byte(`{"batch":{}}`), byte(0), byte(0))
	bots, _ := NewBotDetector()
	f.Fuzz(func(t *testing.T, data []byte, typIdx, flags byte) {
		typ := endpointTypes[int(typIdx)%len(endpointTypes)]
		h := NewIngest(nil, nil, hearth.SystemClock{}, bots, IngestOptions{MaxEventBytes: 200}, nil)
		h.newID = fixedID
		req := reqFor(flags&7, "", "", "")
		ba, errA := refDecodeBody(data, typ)
		bb, errB := decodeBody(data, typ)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("old err %v, new err %v", errA, errB)
		}
		if errA != nil {
			if hearth.MessageOf(errA) != hearth.MessageOf(errB) {
				t.Fatalf("old %q, new %q", hearth.MessageOf(errA), hearth.MessageOf(errB))
			}
			return
		}
		if ba.writeKey != bb.writeKey || len(ba.events) != len(bb.events) {
			t.Fatalf("old key %q %d events, new %q %d", ba.writeKey, len(ba.events), bb.writeKey, len(bb.events))
		}
		et := typ
		if et == "batch" {
			et = ""
		}
		batchA, rejA := h.refNormalizeEvents(&ba, et, req, "s")
		batchB, rejB := h.normalizeEvents(&bb, et, req, "s")
		if !reflect.DeepEqual(rejA, rejB) || !reflect.DeepEqual(batchA.Rejected, batchB.Rejected) {
			t.Fatalf("rejected:\nold %+v %+v\nnew %+v %+v", rejA, batchA.Rejected, rejB, batchB.Rejected)
		}
		if len(batchA.Events) != len(batchB.Events) {
			t.Fatalf("old %d events, new %d", len(batchA.Events), len(batchB.Events))
		}
		for i := range batchA.Events {
			sameEvent(t, batchA.Events[i], batchB.Events[i])
		}
	})
}

// TestDiffCases runs the corner cases that the fuzzers found or that encoding/json is known to treat oddly.
func TestDiffCases(t *testing.T) {
	ins := []string{
		`{"type":"track","userId":"u","event":"x","context":{"a":{"ip":"nested"},"userAgent":"Googlebot"}}`,
		`{"type":"track","userId":"u","event":"x","context":{"\u0069p":"esc"}}`,
		`{"type":"track","userId":"u","event":"x","context":{"IP":"up","ip":null}}`,
		`{"type":"track","userId":"u","event":"x","context":{"ip":"a","ip":5}}`,
		`{"type":"track","uſerId":"u","event":"x"}`,
		`{"type":"track","userId":"u","event":"x","writeKey":"\u212A"}`,
		`{"type":"track","useRId":"u","event":"x","properties":{"a":"\xff\xfe","b":"\ud800"}}`,
		"{\"type\":\"track\",\"userId\":\"u\",\"event\":\"x\",\"properties\":{ \"a\" :\n[ 1 , 2 ] }}",
		`{"type":"track","userId":"u","event":"x","timestamp":"9999-12-31T23:59:59-01:00"}`,
		`{"type":"track","userId":"u","event":"x","timestamp":"0000-01-01T00:00:00+01:00","sentAt":"2026-01-01T00:00:00Z"}`,
		`{"type":"track","userId":"u","event":"x","originalTimestamp":"0000-01-01T00:00:00+01:00"}`,
		`{"type":"track","userId":"u","event":"x","sentAt":"0000-01-01T00:00:00+01:00"}`,
		`{"type":"track","userId":"u","event":"x","timestamp":"2026-06-01T12:00:00.000+0800"}`,
		`{"type":"track","userId":"u","event":"x","timestamp":1780286400000}`,
		`{"type":"track","userId":"u","event":"x","timestamp":"1780286400000"}`,
		`{"type":"track","userId":"\u4e0a\u6d77 ","event":"\t x\n"}`,
		`{"type":"track","userId":"` + strings.Repeat("é", 255) + `","event":"x"}`,
		`{"type":"track","userId":"` + strings.Repeat("é", 256) + `","event":"x"}`,
		`{"type":"tr\u0061ck","userId":"u","event":"x"}`,
		`{"type":"track","type":null,"userId":"u","event":"x"}`,
		`{"type":"Track","userId":"u","event":"x"}`,
		`{"type":"track","userId":-1.5e3,"event":"x","anonymousId":null}`,
		`{"type":"track","userId":true,"event":"x"}`,
		`{"type":"track","userId":"u","event":"x","integrations":[]}`,
		`{"type":"track","userId":"u","event":"x","integrations":{"a":1},"context":null}`,
		`{"type":"track","userId":"u","event":"x","thisIsAVeryLongUnknownMemberNameIndeed":{"x":[1,2,3]}}`,
		`{"type":"alias","userId":"u","previousId":"p"}`,
		`{"type":"group","userId":"u","groupId":"g","traits":{"name":"<Acme & Co>\u2028"}}`,
		`null`, ` {"type":"page","anonymousId":"a"} `, `{"type":"page","anonymousId":"a"}{}`,
		`{"type":"track","userId":"u\u0000","event":"x\ud800","properties":{"a":"\u0000","b":1e308,"c":"\udc00\ud83d\ude00"}}`,
		"{\"type\":\"track\",\"userId\":\"u\xff\",\"event\":\"x\",\"properties\":{\"a\\\"\":\"\xe4\xb8\"}}",
		`{"type":"track","userId":"u","event":"x","properties":{"a":"1e999"},"traits":{"b":[1,0.5e-340]},"context":{"n":1e999}}`,
		`{"type":"track","userId":"u","event":"x","integrations":{"n":-1E+310}}`,
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		`{"type":"page","anonymousId":"a","properties":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `}`,
	}
	reqs := map[string]func(*Request){
		"plain":     func(r *Request) {},
		"server":    func(r *Request) { r.Browser = false },
		"ws sentAt": func(r *Request) { r.SentAt = []byte(` "2026-06-01T12:00:00Z" `) },
		"ws empty":  func(r *Request) { r.SentAt = []byte(`"" `) },
		"ws null":   func(r *Request) { r.SentAt = []byte(` null`) },
		"ctx ws":    func(r *Request) { r.Context = []byte(` { "ip" : "1" } `); r.Integrations = []byte(" {\"a\": 1}") },
		"ctx empty": func(r *Request) { r.Context = []byte(` { } `) },
		"bad ctx":   func(r *Request) { r.Context = []byte(`{"userAgent":[]}`) },
		"num ctx":   func(r *Request) { r.Context = []byte(`5`) },
		"bad json":  func(r *Request) { r.Context = []byte(`{`); r.SentAt = []byte(`"x`) },
	}
	for _, in := range ins {
		for _, typ := range []string{"", "track", "page"} {
			for name, f := range reqs {
				req := testReq()
				f(&req)
				a, errA := refNormalizeEvent([]byte(in), typ, req, fixedID, noBots)
				b, errB := Normalize([]byte(in), typ, req, fixedID, noBots)
				if (errA == nil) != (errB == nil) || errA != nil && hearth.MessageOf(errA) != hearth.MessageOf(errB) {
					t.Errorf("%.80s %q %s: old %v, new %v", in, typ, name, errA, errB)
					continue
				}
				if errA == nil {
					sameEvent(t, a, b)
				}
			}
		}
	}
}

// FuzzValidSame checks what the reader stands on: jsontext, with the options it uses, accepts exactly the
// JSON that encoding/json accepts.

func FuzzValidSame(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,2,{"x":"\ud800"}]`, `"\u00e9"`, "\"\xff\"", `1e5`, `{"a":1,"a":2}`, ` null `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := json.Valid([]byte(s))
		b := jsontext.Value(s).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
		if a != b {
			t.Fatalf("%q: v1 %v, jsontext %v", s, a, b)
		}
	})
}
