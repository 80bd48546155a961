package identity

import (
	mrand "math/rand/v2"
	"strconv"
	"testing"
)

// TestCNMobileAgrees checks the fast path for Chinese mobile numbers against libphonenumber's parser:
// for every five-digit start of an 11-digit number beginning with 1, random numbers in each way of writing
// them are read the same by both (with -short, a sample of the starts).
func TestCNMobileAgrees(t *testing.T) {
	c := DefaultRules().c
	if c.cnMobile == nil {
		t.Fatal("no fast path for CN")
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	step := 1
	if testing.Short() {
		step = 97
	}
	fast := 0
	for prefix := 10000; prefix < 20000; prefix += step {
		for range 2 {
			nsn := strconv.Itoa(prefix) + strconv.Itoa(1000000 + rng.IntN(1000000))[1:]
			for _, s := range []string{nsn, "+86" + nsn, "+86 " + nsn[:3] + " " + nsn[3:7] + " " + nsn[7:], "0086" + nsn,
				"86-" + nsn[:3] + "-" + nsn[3:7] + "-" + nsn[7:], "86" + nsn} {
				got, ok := c.cnMobile.appendE164(nil, []byte(s))
				want, wantOK := c.parsePhone(s)
				if ok {
					fast++
					if !wantOK || string(got) != want {
						t.Errorf("%q: fast path %q, libphonenumber %q, %v", s, got, want, wantOK)
					}
				}
				if !ok && wantOK && want[:3] == "+86" && len(want) == 14 && want[3] == '1' && want[4] >= '3' {
					// A valid mobile number the fast path left to the slow one: allowed, but it should be rare.
					t.Logf("%q: left to libphonenumber, which reads %q", s, want)
				}
			}
		}
	}
	if fast == 0 {
		t.Fatal("the fast path read no number")
	}
}
