package hearth

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the edges: the HTTP layer maps it to a status, workers to retry or drop.
type Kind uint8

const (
	Internal Kind = iota // a fault on our side; the zero value, so an unclassified error is internal
	Invalid
	NotFound
	Conflict
	Unauthenticated
	Forbidden
	RateLimited
	TooLarge
	Unavailable
)

var kindNames = [...]string{
	Internal:        "internal",
	Invalid:         "invalid",
	NotFound:        "not_found",
	Conflict:        "conflict",
	Unauthenticated: "unauthenticated",
	Forbidden:       "forbidden",
	RateLimited:     "rate_limited",
	TooLarge:        "too_large",
	Unavailable:     "unavailable",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is Hearth's one error type. Msg is safe to show a user; Err is for the operator's log.
type Error struct {
	Kind Kind
	Op   string // the operation that failed, such as "auth.login"
	Code string // optional machine-readable detail, such as "invalid_credentials"; defaults to Kind's name
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	s := e.Op
	if s != "" {
		s += ": "
	}
	if e.Msg != "" {
		s += e.Msg
	} else {
		s += e.Kind.String()
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind whose user-facing message is formatted from format and args.
func Errorf(kind Kind, op, format string, args ...any) error {
	return &Error{Kind: kind, Op: op, Msg: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// CodeOf returns the machine-readable code of err: its Code, else its Kind's name.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.Code != "" {
			return e.Code
		}
		return e.Kind.String()
	}
	return Internal.String()
}

// MessageOf returns the user-facing message of err. Internal errors never show their detail.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal && e.Msg != "" {
		return e.Msg
	}
	switch KindOf(err) {
	case NotFound:
		return "Not found."
	case Unauthenticated:
		return "Please sign in."
	case Forbidden:
		return "You are not allowed to do this."
	}
	return "Something went wrong on our side."
}
