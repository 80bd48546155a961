// Package auth is admin access: console users and their sessions, API keys, the first-admin setup link, and
// throttling of sign-in attempts. Roles are checked by the HTTP layer's route table; this package enforces the
// rules that must hold whatever the caller (there is always an enabled admin).
package auth

import (
	"context"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
)

// User is a console user.
type User struct {
	ID           string
	Email        string
	Name         string
	Role         hearth.Role
	Disabled     bool
	PasswordHash string
	CreatedAt    time.Time
	LastLoginAt  *time.Time
}

// APIKey is an admin API credential. The key itself is shown once and stored only as a hash.
type APIKey struct {
	ID         string
	Name       string
	Role       hearth.Role
	Prefix     string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Session is a signed-in console user's session.
type Session struct {
	TokenHash string
	UserID    string
	CSRFToken string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Principal is who makes a request: a console user through a session, or an API key.
type Principal struct {
	Role      hearth.Role
	UserID    string // set for sessions
	APIKeyID  string // set for API keys
	CSRFToken string // set for sessions: cookie-authenticated writes must echo it
}

// Store is what auth needs from storage.
type Store interface {
	CountUsers(ctx context.Context) (int, error)
	CreateUser(ctx context.Context, u User) error
	UserByID(ctx context.Context, id string) (User, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser saves a user's name, role and disabled flag. It fails with Conflict, changing nothing, when
	// the change would leave no enabled admin; the check and the change are one transaction.
	UpdateUser(ctx context.Context, u User) error
	SetPasswordHash(ctx context.Context, userID, hash string) error
	RecordLogin(ctx context.Context, userID string, at time.Time) error

	CreateSession(ctx context.Context, s Session) error
	SessionByHash(ctx context.Context, tokenHash string) (Session, error)
	DeleteSession(ctx context.Context, tokenHash string) error
	// DeleteUserSessions signs a user out everywhere except, if given, one session.
	DeleteUserSessions(ctx context.Context, userID, exceptHash string) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) error

	CreateAPIKey(ctx context.Context, k APIKey, keyHash string) error
	APIKeyByHash(ctx context.Context, keyHash string) (APIKey, error)
	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	RevokeAPIKey(ctx context.Context, id string, at time.Time) error
	TouchAPIKey(ctx context.Context, id string, at time.Time) error

	// ReplaceSetupToken makes tokenHash the only valid setup token.
	ReplaceSetupToken(ctx context.Context, tokenHash string, created, expires time.Time) error
	SetupTokenValid(ctx context.Context, tokenHash string, now time.Time) (bool, error)
	// CreateFirstAdmin creates u if the setup token is valid and no user exists yet, and spends the token, in
	// one transaction. It fails with NotFound when the token is not valid, Conflict when a user exists.
	CreateFirstAdmin(ctx context.Context, tokenHash string, now time.Time, u User) error

	RecordLoginFailure(ctx context.Context, keyHashes []string, at time.Time) error
	// LoginFailures counts keyHash's failures since since, and tells the oldest of them.
	LoginFailures(ctx context.Context, keyHash string, since time.Time) (n int, oldest time.Time, err error)
	DeleteLoginFailures(ctx context.Context, before time.Time) error
}

// Options tune admin access. Zero values take the defaults.
type Options struct {
	SessionTTL time.Duration // default 7 days
	SetupTTL   time.Duration // how long the setup link works; default 24 hours
	// Sign-in throttling: at most MaxFailuresPerEmail failed attempts for one email address and
	// MaxFailuresPerClient for one client address within FailureWindow.
	MaxFailuresPerEmail  int           // default 10
	MaxFailuresPerClient int           // default 50
	FailureWindow        time.Duration // default 15 minutes
}

func (o *Options) setDefaults() {
	if o.SessionTTL == 0 {
		o.SessionTTL = 7 * 24 * time.Hour
	}
	if o.SetupTTL == 0 {
		o.SetupTTL = 24 * time.Hour
	}
	if o.MaxFailuresPerEmail == 0 {
		o.MaxFailuresPerEmail = 10
	}
	if o.MaxFailuresPerClient == 0 {
		o.MaxFailuresPerClient = 50
	}
	if o.FailureWindow == 0 {
		o.FailureWindow = 15 * time.Minute
	}
}

// Service is admin access.
type Service struct {
	store  Store
	clock  hearth.Clock
	opts   Options
	logger *slog.Logger
	// dummyHash is checked against when an email is unknown, so that a sign-in takes as long either way and
	// does not tell which addresses have accounts. Made on first use: hashing costs 19 MiB and tens of ms.
	dummyHash func() string
}

// NewService returns the admin access service.
func NewService(store Store, clock hearth.Clock, logger *slog.Logger, opts Options) *Service {
	opts.setDefaults()
	dummy := sync.OnceValue(func() string {
		h, _ := HashPassword(newToken())
		return h
	})
	return &Service{store: store, clock: clock, opts: opts, logger: logger, dummyHash: dummy}
}

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 10

// NormalizeEmail trims and lower-cases an email address and checks its form.
func NormalizeEmail(op, email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || len(email) > 254 {
		return "", hearth.Errorf(hearth.Invalid, op, "Enter a valid email address.")
	}
	return email, nil
}

func checkPassword(op, password string) error {
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return hearth.Errorf(hearth.Invalid, op, "The password must have at least %d characters.", MinPasswordLen)
	}
	if len(password) > 1024 {
		return hearth.Errorf(hearth.Invalid, op, "The password is too long.")
	}
	return nil
}

func checkName(op, field, name string, maxLen int) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > maxLen {
		return "", hearth.Errorf(hearth.Invalid, op, "The %s must have 1 to %d characters.", field, maxLen)
	}
	return name, nil
}

func checkRole(op string, r hearth.Role) error {
	if !r.Valid() {
		return hearth.Errorf(hearth.Invalid, op, "The role must be admin, marketer or analyst.")
	}
	return nil
}
