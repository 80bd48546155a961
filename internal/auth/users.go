package auth

import (
	"context"

	"github.com/hearth-cdp/hearth"
)

// NewUser is what it takes to create a console user.
type NewUser struct {
	Email    string
	Name     string
	Role     hearth.Role
	Password string
}

// CreateUser creates a console user.
func (s *Service) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	u, err := s.newUser("auth.create_user", nu)
	if err != nil {
		return User{}, err
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return User{}, conflictEmail(err)
	}
	return u, nil
}

func (s *Service) newUser(op string, nu NewUser) (User, error) {
	email, err := NormalizeEmail(op, nu.Email)
	if err != nil {
		return User{}, err
	}
	name := nu.Name
	if name == "" {
		name = email
	}
	if name, err = checkName(op, "name", name, 100); err != nil {
		return User{}, err
	}
	if err := checkRole(op, nu.Role); err != nil {
		return User{}, err
	}
	if err := checkPassword(op, nu.Password); err != nil {
		return User{}, err
	}
	hash, err := HashPassword(nu.Password)
	if err != nil {
		return User{}, err
	}
	return User{
		ID: hearth.NewID(), Email: email, Name: name, Role: nu.Role,
		PasswordHash: hash, CreatedAt: s.clock.Now(),
	}, nil
}

func conflictEmail(err error) error {
	if hearth.KindOf(err) == hearth.Conflict {
		return &hearth.Error{Kind: hearth.Conflict, Op: "auth.create_user", Msg: "A user with this email address already exists.", Err: err}
	}
	return err
}

// User returns a console user.
func (s *Service) User(ctx context.Context, id string) (User, error) {
	return s.store.UserByID(ctx, id)
}

// Users lists the console users.
func (s *Service) Users(ctx context.Context) ([]User, error) {
	return s.store.ListUsers(ctx)
}

// UserChange is a partial update of a user; nil fields stay as they are.
type UserChange struct {
	Name     *string
	Role     *hearth.Role
	Disabled *bool
}

// UpdateUser changes a user on behalf of actor. Actors cannot demote or disable themselves, so that an
// enabled admin always remains. Disabling signs the user out everywhere.
func (s *Service) UpdateUser(ctx context.Context, actor Principal, id string, ch UserChange) (User, error) {
	const op = "auth.update_user"
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return User{}, err
	}
	if ch.Name != nil {
		if u.Name, err = checkName(op, "name", *ch.Name, 100); err != nil {
			return User{}, err
		}
	}
	if ch.Role != nil {
		if err := checkRole(op, *ch.Role); err != nil {
			return User{}, err
		}
		if actor.UserID == id && *ch.Role != u.Role {
			return User{}, hearth.Errorf(hearth.Invalid, op, "You cannot change your own role.")
		}
		u.Role = *ch.Role
	}
	if ch.Disabled != nil {
		if actor.UserID == id && *ch.Disabled {
			return User{}, hearth.Errorf(hearth.Invalid, op, "You cannot disable yourself.")
		}
		u.Disabled = *ch.Disabled
	}
	if err := s.store.UpdateUser(ctx, u); err != nil {
		if hearth.KindOf(err) == hearth.Conflict {
			return User{}, &hearth.Error{Kind: hearth.Invalid, Op: op, Msg: "Hearth needs at least one enabled admin: make someone else an admin first.", Err: err}
		}
		return User{}, err
	}
	if u.Disabled {
		if err := s.store.DeleteUserSessions(ctx, u.ID, ""); err != nil {
			return User{}, err
		}
	}
	return u, nil
}

// ChangePassword sets a user's new password after checking the current one, and signs the user out of every
// other session.
func (s *Service) ChangePassword(ctx context.Context, actor Principal, sessionToken, current, next string) error {
	const op = "auth.change_password"
	if actor.UserID == "" {
		return hearth.Errorf(hearth.Forbidden, op, "Only a signed-in user can change a password.")
	}
	u, err := s.store.UserByID(ctx, actor.UserID)
	if err != nil {
		return err
	}
	if !CheckPassword(u.PasswordHash, current) {
		return &hearth.Error{Kind: hearth.Invalid, Op: op, Code: "invalid_credentials", Msg: "The current password is not right."}
	}
	if err := checkPassword(op, next); err != nil {
		return err
	}
	hash, err := HashPassword(next)
	if err != nil {
		return err
	}
	if err := s.store.SetPasswordHash(ctx, u.ID, hash); err != nil {
		return err
	}
	return s.store.DeleteUserSessions(ctx, u.ID, hashToken(sessionToken))
}

// EnsureAdmin creates the first admin from the given email and password when the store has no user yet.
// It reports whether it created one.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) (bool, error) {
	n, err := s.store.CountUsers(ctx)
	if err != nil || n > 0 {
		return false, err
	}
	if _, err := s.CreateUser(ctx, NewUser{Email: email, Role: hearth.RoleAdmin, Password: password}); err != nil {
		if hearth.KindOf(err) == hearth.Conflict { // another node created it first
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// NeedsSetup reports whether the store has no user yet.
func (s *Service) NeedsSetup(ctx context.Context) (bool, error) {
	n, err := s.store.CountUsers(ctx)
	return n == 0, err
}

// NewSetupToken issues the one-time token of the setup link, replacing any earlier one. It is only for a store
// without users.
func (s *Service) NewSetupToken(ctx context.Context) (string, error) {
	token := newToken()
	now := s.clock.Now()
	if err := s.store.ReplaceSetupToken(ctx, hashToken(token), now, now.Add(s.opts.SetupTTL)); err != nil {
		return "", err
	}
	return token, nil
}

// CheckSetupToken tells whether a setup token can still be used.
func (s *Service) CheckSetupToken(ctx context.Context, token string) error {
	ok, err := s.store.SetupTokenValid(ctx, hashToken(token), s.clock.Now())
	if err != nil {
		return err
	}
	if !ok {
		return hearth.Errorf(hearth.NotFound, "auth.setup", "This setup link has been used or has expired. Restart Hearth to get a new one.")
	}
	return nil
}

// CompleteSetup creates the first admin with a setup token and signs them in.
func (s *Service) CompleteSetup(ctx context.Context, token string, nu NewUser) (string, Session, User, error) {
	const op = "auth.setup"
	nu.Role = hearth.RoleAdmin
	u, err := s.newUser(op, nu)
	if err != nil {
		return "", Session{}, User{}, err
	}
	now := s.clock.Now()
	if err := s.store.CreateFirstAdmin(ctx, hashToken(token), now, u); err != nil {
		switch hearth.KindOf(err) {
		case hearth.NotFound:
			return "", Session{}, User{}, hearth.Errorf(hearth.NotFound, op, "This setup link has been used or has expired. Restart Hearth to get a new one.")
		case hearth.Conflict:
			return "", Session{}, User{}, hearth.Errorf(hearth.Conflict, op, "Hearth is already set up. Sign in instead.")
		}
		return "", Session{}, User{}, err
	}
	sessToken, sess, err := s.openSession(ctx, u.ID, now)
	if err != nil {
		return "", Session{}, User{}, err
	}
	if err := s.store.RecordLogin(ctx, u.ID, now); err != nil {
		return "", Session{}, User{}, err
	}
	u.LastLoginAt = &now
	return sessToken, sess, u, nil
}

// KeyPrefix is how every Hearth API key starts, so that secret scanners can recognise one.
const KeyPrefix = "hk_"

// CreateAPIKey issues a new API key and returns it; only its hash is kept.
func (s *Service) CreateAPIKey(ctx context.Context, name string, role hearth.Role) (string, APIKey, error) {
	const op = "auth.create_api_key"
	name, err := checkName(op, "name", name, 100)
	if err != nil {
		return "", APIKey{}, err
	}
	if err := checkRole(op, role); err != nil {
		return "", APIKey{}, err
	}
	key := KeyPrefix + newToken()
	k := APIKey{ID: hearth.NewID(), Name: name, Role: role, Prefix: key[:len(KeyPrefix)+6], CreatedAt: s.clock.Now()}
	if err := s.store.CreateAPIKey(ctx, k, hashToken(key)); err != nil {
		return "", APIKey{}, err
	}
	return key, k, nil
}

// APIKeys lists API keys, revoked ones included.
func (s *Service) APIKeys(ctx context.Context) ([]APIKey, error) {
	return s.store.ListAPIKeys(ctx)
}

// RevokeAPIKey makes a key stop working at once.
func (s *Service) RevokeAPIKey(ctx context.Context, id string) error {
	return s.store.RevokeAPIKey(ctx, id, s.clock.Now())
}
