package touchpoint

import (
	"context"
	"errors"
	"time"

	"github.com/hearth-cdp/hearth"
)

// Refusal says why a token leads nowhere. Whoever holds a refused token sees a friendly page (or the
// campaign's fallback), never a destination of their choosing.
type Refusal string

const (
	RefusedMalformed     Refusal = "malformed"      // not a token at all
	RefusedForged        Refusal = "forged"         // the signature does not match
	RefusedUnknownKey    Refusal = "unknown_key"    // signed with a key that was retired, or never was
	RefusedNoTouchpoint  Refusal = "no_touchpoint"  // signed, but its touchpoint is gone
	RefusedExpired       Refusal = "expired"        // past its expiry
	RefusedRevoked       Refusal = "revoked"        // revoked: the token, its serial or its touchpoint
	RefusedPaused        Refusal = "paused"         // its touchpoint or campaign is paused
	RefusedCampaignEnded Refusal = "campaign_ended" // its campaign ended, or has not begun
)

// Resolution is what a token leads to.
type Resolution struct {
	Token      Token
	Touchpoint Touchpoint // set unless the token itself is refused
	Campaign   *Campaign
	// Destination is where the token leads, with the token as ht and the campaign's UTM parameters; empty
	// when refused.
	Destination string
	Refused     Refusal
	// FallbackURL is the campaign's page for refused tokens, when there is one.
	FallbackURL string
}

// keyReloadEvery limits how often an unknown key id makes the keyring read the keys again: a key made on
// another node shows up here within this time, and forged key ids cannot hammer the store.
const keyReloadEvery = time.Second

// Resolve verifies a token and finds where it leads, for a touch at time at: the token's expiry and its
// campaign's dates are judged at that time (an offline touch is reported after it happened), revocations and
// pauses as they stand now. The error is only for a store that fails; a bad token is a Resolution with
// Refused set.
func (s *Service) Resolve(ctx context.Context, token string, at time.Time) (Resolution, error) {
	tok, err := s.keys.Verify(token)
	if errors.Is(err, ErrUnknownKey) && s.mayReloadKeys() {
		if err := s.LoadKeys(ctx); err != nil {
			return Resolution{}, err
		}
		tok, err = s.keys.Verify(token)
	}
	switch {
	case errors.Is(err, ErrMalformed):
		return Resolution{Refused: RefusedMalformed}, nil
	case errors.Is(err, ErrForged):
		return Resolution{Refused: RefusedForged}, nil
	case errors.Is(err, ErrUnknownKey):
		return Resolution{Refused: RefusedUnknownKey}, nil
	case err != nil:
		return Resolution{}, err
	}
	e, err := s.entry(ctx, tok.Number)
	if err != nil {
		return Resolution{}, err
	}
	res := Resolution{Token: tok}
	if e.err != nil {
		res.Refused = RefusedNoTouchpoint
		return res, nil
	}
	res.Touchpoint, res.Campaign = e.touchpoint, e.campaign
	if e.campaign != nil {
		res.FallbackURL = e.campaign.FallbackURL
	}
	res.Refused = refusal(tok, token, e, at)
	if res.Refused == "" {
		res.Destination = withParams(e.touchpoint.DestinationURL, token, e.campaign)
	}
	return res, nil
}

// refusal is why a signed token of a known touchpoint is refused for a touch at time at, or "".
func refusal(tok Token, token string, e resolvedEntry, at time.Time) Refusal {
	for _, r := range e.revocations {
		if r.covers(token, tok.Serial) {
			return RefusedRevoked
		}
	}
	if tok.Serial > e.touchpoint.LastSerial { // signed, yet never issued: only a stolen key makes one
		return RefusedForged
	}
	if tok.Expired(at) {
		return RefusedExpired
	}
	if e.touchpoint.Status != StatusActive {
		return RefusedPaused
	}
	if c := e.campaign; c != nil {
		switch {
		case c.Status == StatusPaused:
			return RefusedPaused
		case c.Status == StatusEnded, c.EndsAt != nil && !at.Before(*c.EndsAt), c.StartsAt != nil && at.Before(*c.StartsAt):
			return RefusedCampaignEnded
		}
	}
	return ""
}

func (s *Service) mayReloadKeys() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if now.Sub(s.reloaded) < keyReloadEvery {
		return false
	}
	s.reloaded = now
	return true
}

// entry returns what resolving needs of touchpoint number, from the cache when fresh.
func (s *Service) entry(ctx context.Context, number int64) (resolvedEntry, error) {
	now := s.clock.Now()
	s.mu.Lock()
	e, ok := s.resolved[number]
	s.mu.Unlock()
	if ok && now.Sub(e.loadedAt) < s.opts.CacheFor {
		return e, nil
	}
	e = resolvedEntry{loadedAt: now}
	t, err := s.store.TouchpointByNumber(ctx, number)
	switch {
	case hearth.KindOf(err) == hearth.NotFound:
		e.err = errNoTouchpoint
	case err != nil:
		return e, err
	default:
		e.touchpoint = t
		if t.CampaignID != "" {
			c, err := s.store.Campaign(ctx, t.CampaignID)
			if err != nil {
				return e, err
			}
			e.campaign = &c
		}
		if e.revocations, err = s.store.Revocations(ctx, t.ID); err != nil {
			return e, err
		}
	}
	s.mu.Lock()
	if len(s.resolved) > 100_000 { // a bound on memory, far above the touchpoints in use at once
		clear(s.resolved)
	}
	s.resolved[number] = e
	s.mu.Unlock()
	return e, nil
}

// forget drops a touchpoint's cached entry after a local change, so that this node sees it at once.
func (s *Service) forget(number int64) {
	s.mu.Lock()
	delete(s.resolved, number)
	s.mu.Unlock()
}

func (s *Service) forgetAll() {
	s.mu.Lock()
	clear(s.resolved)
	s.mu.Unlock()
}
