// Package hearth holds the vocabulary shared by every part of Hearth: ids, the clock and the one error type.
// Hearth is the centre that a company's customer touchpoints connect to; see docs/ and DESIGN.md.
package hearth

import (
	"time"

	"github.com/google/uuid"
)

// Version is set at build time with -ldflags "-X github.com/hearth-cdp/hearth.Version=…".
var Version = "dev"

// NewID returns a new id: a UUIDv7, which sorts by creation time as text in both SQLite and PostgreSQL.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// Clock tells the time. Tests pass a fixed or stepping clock; everything else uses SystemClock.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock, in UTC.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// Role is what a console user or API key may do.
type Role string

const (
	RoleAdmin    Role = "admin"    // everything, including users and API keys
	RoleMarketer Role = "marketer" // reads everything, writes marketing objects
	RoleAnalyst  Role = "analyst"  // reads only
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleAdmin, RoleMarketer, RoleAnalyst:
		return true
	}
	return false
}

// CanWrite reports whether r may create or change marketing objects.
func (r Role) CanWrite() bool { return r == RoleAdmin || r == RoleMarketer }
