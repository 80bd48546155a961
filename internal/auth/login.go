package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth"
)

// Login checks an email and password and opens a session. It returns the session token for the cookie.
// clientAddr is the client's IP address, used only (hashed) to throttle guessing.
func (s *Service) Login(ctx context.Context, email, password, clientAddr string) (string, Session, User, error) {
	const op = "auth.login"
	now := s.clock.Now()
	norm, err := NormalizeEmail(op, email)
	if err != nil {
		norm = ""
	}
	// Throttle by the address as it will be looked up, so that "OPS@example.com " is the same account.
	throttleEmail := norm
	if throttleEmail == "" {
		throttleEmail = strings.ToLower(strings.TrimSpace(email))
	}
	emailKey := hashToken("email:" + throttleEmail)
	clientKey := hashToken("client:" + clientAddr)
	if err := s.throttle(ctx, op, now, emailKey, s.opts.MaxFailuresPerEmail); err != nil {
		return "", Session{}, User{}, err
	}
	if err := s.throttle(ctx, op, now, clientKey, s.opts.MaxFailuresPerClient); err != nil {
		return "", Session{}, User{}, err
	}
	badCredentials := &hearth.Error{Kind: hearth.Unauthenticated, Op: op, Code: "invalid_credentials", Msg: "The email or password is not right."}
	u, err := s.store.UserByEmail(ctx, norm)
	if err != nil && hearth.KindOf(err) != hearth.NotFound {
		return "", Session{}, User{}, err
	}
	found := err == nil
	hash := s.dummyHash()
	if found {
		hash = u.PasswordHash
	}
	if !CheckPassword(hash, password) || !found || u.Disabled {
		if err := s.store.RecordLoginFailure(ctx, []string{emailKey, clientKey}, now); err != nil {
			return "", Session{}, User{}, err
		}
		return "", Session{}, User{}, badCredentials
	}
	token, sess, err := s.openSession(ctx, u.ID, now)
	if err != nil {
		return "", Session{}, User{}, err
	}
	if err := s.store.RecordLogin(ctx, u.ID, now); err != nil {
		return "", Session{}, User{}, err
	}
	u.LastLoginAt = &now
	return token, sess, u, nil
}

// throttle refuses a sign-in while key has too many recent failures.
func (s *Service) throttle(ctx context.Context, op string, now time.Time, key string, limit int) error {
	n, oldest, err := s.store.LoginFailures(ctx, key, now.Add(-s.opts.FailureWindow))
	if err != nil {
		return err
	}
	if n < limit {
		return nil
	}
	return &RateLimitError{
		RetryAfter: max(time.Second, oldest.Add(s.opts.FailureWindow).Sub(now)),
		Err:        hearth.Errorf(hearth.RateLimited, op, "Too many sign-in attempts. Try again later."),
	}
}

// RateLimitError says when a refused request may be tried again.
type RateLimitError struct {
	RetryAfter time.Duration
	Err        error
}

func (e *RateLimitError) Error() string { return e.Err.Error() }
func (e *RateLimitError) Unwrap() error { return e.Err }

// RetryAfter returns how long a rate-limited caller should wait, if err says.
func RetryAfter(err error) (time.Duration, bool) {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl.RetryAfter, true
	}
	return 0, false
}

func (s *Service) openSession(ctx context.Context, userID string, now time.Time) (string, Session, error) {
	token := newToken()
	sess := Session{
		TokenHash: hashToken(token),
		UserID:    userID,
		CSRFToken: newToken(),
		CreatedAt: now,
		ExpiresAt: now.Add(s.opts.SessionTTL),
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return "", Session{}, fmt.Errorf("auth: open session: %w", err)
	}
	return token, sess, nil
}

// Logout ends the session whose token is given. An unknown token is not an error.
func (s *Service) Logout(ctx context.Context, token string) error {
	return s.store.DeleteSession(ctx, hashToken(token))
}

// SessionPrincipal authenticates a session cookie's token.
func (s *Service) SessionPrincipal(ctx context.Context, token string) (Principal, User, error) {
	const op = "auth.session"
	unauth := hearth.Errorf(hearth.Unauthenticated, op, "Your session has ended. Please sign in again.")
	if token == "" {
		return Principal{}, User{}, unauth
	}
	sess, err := s.store.SessionByHash(ctx, hashToken(token))
	if hearth.KindOf(err) == hearth.NotFound {
		return Principal{}, User{}, unauth
	}
	if err != nil {
		return Principal{}, User{}, err
	}
	if !s.clock.Now().Before(sess.ExpiresAt) {
		return Principal{}, User{}, unauth
	}
	u, err := s.store.UserByID(ctx, sess.UserID)
	if err != nil {
		return Principal{}, User{}, err
	}
	if u.Disabled {
		return Principal{}, User{}, unauth
	}
	return Principal{Role: u.Role, UserID: u.ID, CSRFToken: sess.CSRFToken}, u, nil
}

// APIKeyPrincipal authenticates an API key.
func (s *Service) APIKeyPrincipal(ctx context.Context, key string) (Principal, error) {
	const op = "auth.api_key"
	k, err := s.store.APIKeyByHash(ctx, hashToken(key))
	if hearth.KindOf(err) == hearth.NotFound || (err == nil && k.RevokedAt != nil) {
		return Principal{}, hearth.Errorf(hearth.Unauthenticated, op, "The API key is not valid.")
	}
	if err != nil {
		return Principal{}, err
	}
	// Note the use at most once a minute, so that a busy integration does not turn every read into a write.
	now := s.clock.Now()
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > time.Minute {
		if err := s.store.TouchAPIKey(ctx, k.ID, now); err != nil {
			return Principal{}, err
		}
	}
	return Principal{Role: k.Role, APIKeyID: k.ID}, nil
}

// Sweep deletes expired sessions and old sign-in failures. The app calls it periodically.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.clock.Now()
	if err := s.store.DeleteExpiredSessions(ctx, now); err != nil {
		return err
	}
	return s.store.DeleteLoginFailures(ctx, now.Add(-s.opts.FailureWindow))
}
