package identity

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Reason is why a value is not an identifier.
type Reason uint8

const (
	// Junk: the value is on the type's junk list.
	Junk Reason = iota + 1
	// Malformed: the value is not one of the type: not an email address, not a valid phone number, too long,
	// with control characters, or of the wrong JSON type.
	Malformed
	// OverLimit: the event holds more values of the type than one profile may (the first ones are kept).
	OverLimit
)

func (r Reason) String() string {
	switch r {
	case Junk:
		return "junk"
	case Malformed:
		return "malformed"
	case OverLimit:
		return "over_limit"
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// reasonEmpty says a value is empty or only spaces: absent, and not counted as refused.
const reasonEmpty Reason = 255

// The kinds of normalisation.
type kind uint8

const (
	kindID kind = iota // trimmed, at most 255 characters
	kindEmail
	kindPhone
)

func kindOf(t Type) kind {
	switch t {
	case Email:
		return kindEmail
	case Phone:
		return kindPhone
	}
	return kindID
}

// maxIDLen is the most characters an id may have.
const maxIDLen = 255

// typeRule is a TypeRule compiled.
type typeRule struct {
	typ      Type
	limit    int
	kind     kind
	junk     map[string]struct{} // lower-cased
	globs    [][]string          // entries with *, split at each *
	repeated bool
}

// Normalize returns the identifier of type t that raw is, normalised: trimmed of spaces (and of invisible
// characters such as zero-width spaces) at either end, and then
//
//   - email: lower-cased, full-width characters made ASCII (an IME's ＠ and 。), and refused unless it is
//     an address (local@domain.tld, no quoted local parts, no IP literals); no provider-specific rewriting:
//     a.b+c@gmail.com stays as it is;
//   - phone: parsed with libphonenumber, in the rules' region when it has no country code, to E.164, and
//     refused unless it is a valid number that can be a person's (not toll-free, premium-rate, shared-cost
//     or a company's universal number);
//   - any other type: at most 255 characters, as written (case is kept).
//
// A value with control or format characters inside is refused, and so is a value on the type's junk list.
// It returns false when raw is not an identifier of t, or t is not one of the rules' types.
func (r Rules) Normalize(t Type, raw string) (Identifier, bool) {
	ti := r.Priority(t)
	if ti < 0 {
		return Identifier{}, false
	}
	var buf [64]byte
	out, reason := r.c.appendNormalized(buf[:0], ti, []byte(raw))
	if reason != 0 {
		return Identifier{}, false
	}
	return Identifier{Type: t, Value: string(out)}, true
}

// appendNormalized appends the normalised value of text as an identifier of the ti'th type, or appends
// nothing and says why not.
func (c *compiled) appendNormalized(dst []byte, ti int, text []byte) ([]byte, Reason) {
	tr := &c.types[ti]
	v := trim(text)
	if len(v) == 0 {
		return dst, reasonEmpty
	}
	if len(v) > 4*maxIDLen || !clean(v) {
		return dst, Malformed
	}
	if tr.kind != kindID && tr.isJunkWord(v) { // an id is matched as normalised, which is as written
		return dst, Junk
	}
	start := len(dst)
	dst, ok := c.appendValue(dst, tr.kind, v)
	if !ok {
		return dst[:start], Malformed
	}
	if c.isJunkValue(tr, dst[start:]) {
		return dst[:start], Junk
	}
	return dst, 0
}

// appendValue appends a trimmed, clean value normalised as of a kind, junk or not.
func (c *compiled) appendValue(dst []byte, k kind, v []byte) ([]byte, bool) {
	switch k {
	case kindEmail:
		return appendEmail(dst, v)
	case kindPhone:
		return c.appendPhone(dst, v)
	}
	return append(dst, v...), utf8.RuneCount(v) <= maxIDLen
}

// trim cuts white space and invisible characters from either end.
func trim(s []byte) []byte {
	for len(s) > 0 {
		if c := s[0]; c < utf8.RuneSelf {
			if !isASCIISpace(c) {
				break
			}
			s = s[1:]
			continue
		}
		r, n := utf8.DecodeRune(s)
		if !isBlank(r) {
			break
		}
		s = s[n:]
	}
	for len(s) > 0 {
		if c := s[len(s)-1]; c < utf8.RuneSelf {
			if !isASCIISpace(c) {
				break
			}
			s = s[:len(s)-1]
			continue
		}
		r, n := utf8.DecodeLastRune(s)
		if !isBlank(r) {
			break
		}
		s = s[:len(s)-n]
	}
	return s
}

func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// isBlank reports whether r is white space or invisible: zero-width spaces and joiners, the word joiner and
// the byte order mark, which copying and pasting leave around values.
func isBlank(r rune) bool {
	switch r {
	case '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff':
		return true
	}
	return unicode.IsSpace(r)
}

// clean reports whether s is valid UTF-8 without control or format characters.
func clean(s []byte) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
		i += n
	}
	return true
}

// Junk.

// isJunkWord reports whether a value as written is on the junk list.
func (tr *typeRule) isJunkWord(v []byte) bool {
	if len(tr.junk) == 0 || len(v) > 4*maxJunkLen {
		return false
	}
	var buf [128]byte
	_, junk := tr.junk[string(appendLower(buf[:0], v))]
	return junk
}

// isJunkValue reports whether a normalised value is on the junk list: equal to an entry, matching one with
// *, or one character repeated.
func (c *compiled) isJunkValue(tr *typeRule, v []byte) bool {
	var buf [128]byte
	lower := v
	if tr.kind == kindID {
		lower = appendLower(buf[:0], v)
	}
	if _, junk := tr.junk[string(lower)]; junk {
		return true
	}
	for _, g := range tr.globs {
		if matchGlob(g, lower) {
			return true
		}
	}
	if tr.repeated {
		if tr.kind == kindPhone {
			return repeatedRune(v[c.callingCodeLen(v):], "")
		}
		return repeatedRune(lower, "-_.: ")
	}
	return false
}

// appendLower appends s in lower case.
func appendLower(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
		i += n
	}
	return dst
}

// matchGlob reports whether s matches a pattern split at its stars: parts[0]*parts[1]*…
func matchGlob(parts []string, s []byte) bool {
	first, last := parts[0], parts[len(parts)-1]
	if len(s) < len(first)+len(last) || string(s[:len(first)]) != first || string(s[len(s)-len(last):]) != last {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(string(s), p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

// repeatedRune reports whether s, its separators aside, is one character repeated at least three times,
// or nothing but separators. The separators are ASCII.
func repeatedRune(s []byte, separators string) bool {
	var first rune = -1
	n := 0
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(s[i:])
		} else if strings.IndexByte(separators, s[i]) >= 0 {
			i++
			continue
		}
		i += size
		if first < 0 {
			first = r
		} else if r != first {
			return false
		}
		n++
	}
	return n == 0 || n >= 3
}

// callingCodeLen returns the length of "+" and the country calling code that begin a number in E.164.
func (c *compiled) callingCodeLen(e164 []byte) int {
	cc := 0
	for i := 1; i < len(e164) && i <= 3; i++ {
		cc = cc*10 + int(e164[i]-'0')
		if c.callingCodes[cc] {
			return i + 1
		}
	}
	return 1
}

// Emails.

const (
	maxEmailLen = 254
	maxLocalLen = 64
	maxLabelLen = 63
)

// appendEmail appends an email address lower-cased, with full-width characters made ASCII; false when it
// is not an address.
func appendEmail(dst, v []byte) ([]byte, bool) {
	start := len(dst)
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(v[i:])
		i += n
		switch {
		case 0xff01 <= r && r <= 0xff5e: // full-width ASCII, as Chinese and Japanese IMEs type it
			r -= 0xfee0
		case r == '。' || r == '｡':
			r = '.'
		}
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
	}
	return dst, validEmail(dst[start:])
}

// validEmail checks a lower-cased address: a dot-atom local part and a domain name of at least two labels.
// Letters outside ASCII are allowed (RFC 6531); quoted local parts, comments and IP literals are not: no
// person's address needs them.
func validEmail(s []byte) bool {
	at := -1
	for i, c := range s {
		if c == '@' {
			if at >= 0 {
				return false
			}
			at = i
		}
	}
	if at < 1 || len(s) > maxEmailLen || at > maxLocalLen {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' {
		return false
	}
	prevDot := false
	for i := 0; i < len(local); {
		c := local[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(local[i:])
			if !isWordRune(r) {
				return false
			}
			i += n
			prevDot = false
			continue
		}
		switch {
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
			i++
			continue
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0:
		default:
			return false
		}
		prevDot = false
		i++
	}
	labels := 0
	for len(domain) > 0 {
		label := domain
		if i := strings.IndexByte(string(domain), '.'); i >= 0 {
			label, domain = domain[:i], domain[i+1:]
			if len(domain) == 0 {
				return false // a trailing dot
			}
		} else {
			domain = nil
		}
		if !validLabel(label) {
			return false
		}
		labels++
		if domain == nil { // the top-level domain: two characters at least, not all digits
			digits := true
			for _, c := range label {
				digits = digits && '0' <= c && c <= '9'
			}
			if digits || utf8.RuneCount(label) < 2 {
				return false
			}
		}
	}
	return labels >= 2
}

func validLabel(l []byte) bool {
	if len(l) == 0 || len(l) > maxLabelLen || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); {
		c := l[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(l[i:])
			if !isWordRune(r) {
				return false
			}
			i += n
			continue
		}
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
		i++
	}
	return true
}

// isWordRune reports whether a rune outside ASCII may be in an address: a letter, a digit or a mark.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

// Phones.

// maxPhoneLen bounds what is given to libphonenumber, which refuses more than 250 characters anyway.
const maxPhoneLen = 64

// appendPhone appends a phone number in E.164; false when it is not a valid number of a person.
func (c *compiled) appendPhone(dst, v []byte) ([]byte, bool) {
	if len(v) > maxPhoneLen {
		return dst, false
	}
	if c.cnMobile != nil {
		if out, ok := c.cnMobile.appendE164(dst, v); ok {
			return out, true
		}
	}
	e164, ok := c.parsePhone(string(v))
	if !ok {
		return dst, false
	}
	return append(dst, e164...), true
}

// parsePhone parses a number with libphonenumber, which is thorough and slow (some 20 µs).
func (c *compiled) parsePhone(s string) (string, bool) {
	num, err := phonenumbers.Parse(s, c.region)
	if err != nil {
		return "", false
	}
	switch phonenumbers.GetNumberType(num) {
	case phonenumbers.UNKNOWN, phonenumbers.PREMIUM_RATE, phonenumbers.TOLL_FREE, phonenumbers.SHARED_COST,
		phonenumbers.UAN, phonenumbers.VOICEMAIL:
		return "", false // not valid, or a company's
	}
	e164 := phonenumbers.Format(num, phonenumbers.E164)
	// A normalised number normalises to itself: libphonenumber may read the E.164 form of a few numbers
	// otherwise (it strips what looks like a national prefix), and those are refused.
	again, err := phonenumbers.Parse(e164, c.region)
	if err != nil || phonenumbers.Format(again, phonenumbers.E164) != e164 {
		return "", false
	}
	return e164, true
}

// cnMobile reads Chinese mobile numbers as people write them (13812345678, +86 138 1234 5678,
// 0086-138…, 86 138…) without libphonenumber's parser, and checks them with its patterns: most phone
// numbers Hearth sees are these, and this is a hundred times faster. Anything else goes to libphonenumber.
// A test checks that both agree.
type cnMobile struct {
	mobile *regexp.Regexp // China's mobile numbers, as the metadata has them
}

// newCNMobile builds the fast path from libphonenumber's metadata; nil if it lacks China's.
func newCNMobile() *cnMobile {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return nil
	}
	for _, m := range coll.GetMetadata() {
		if m.GetId() != "CN" {
			continue
		}
		// Only the mobile pattern: the metadata's general pattern covers every type's, so libphonenumber's
		// check against it first only refuses sooner.
		mobile := m.GetMobile().GetNationalNumberPattern()
		if mobile == "" {
			return nil
		}
		re, err := regexp.Compile("^(?:" + mobile + ")$")
		if err != nil {
			return nil
		}
		return &cnMobile{mobile: re}
	}
	return nil
}

// appendE164 appends a Chinese mobile number written in one of the common ways (digits, spaces and dashes,
// with +86, 0086 or 86 or without) in E.164; false when v is written otherwise or is not a mobile number.
func (m *cnMobile) appendE164(dst, v []byte) ([]byte, bool) {
	start := len(dst)
	dst = append(dst, "+86"...)
	digits := len(dst)
	plus := false
	for i, c := range v {
		switch {
		case '0' <= c && c <= '9':
			if len(dst)-digits == 15 {
				return dst[:start], false
			}
			dst = append(dst, c)
		case c == '+' && i == 0:
			plus = true
		case (c == ' ' || c == '-') && i > 0:
		default:
			return dst[:start], false
		}
	}
	d := dst[digits:]
	var cut int // how many digits to cut before the national number: the country code, with 00 before it
	switch n := len(d); {
	case plus:
		if n != 13 || d[0] != '8' || d[1] != '6' {
			return dst[:start], false
		}
		cut = 2
	case n == 11:
	case n == 13 && d[0] == '8' && d[1] == '6':
		cut = 2
	case n == 15 && string(d[:4]) == "0086":
		cut = 4
	default:
		return dst[:start], false
	}
	nsn := d[cut:]
	if nsn[0] != '1' || nsn[1] < '3' || !m.mobile.Match(nsn) {
		return dst[:start], false
	}
	return append(dst[:digits], nsn...), true
}
