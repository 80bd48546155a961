// Package touchpoint issues the keys that every touchpoint carries: campaigns and touchpoints, the signing
// keys, signed tokens and their revocation, the touch links' destinations, QR codes and per-item codes.
package touchpoint

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
)

// Channel says what kind of thing carries a touchpoint's token.
type Channel string

const (
	ChannelWebLink  Channel = "web_link"
	ChannelPoster   Channel = "qr_poster"
	ChannelCard     Channel = "business_card"
	ChannelPack     Channel = "product_pack"
	ChannelStore    Channel = "store"
	ChannelAd       Channel = "ad"
	ChannelWeChatQR Channel = "wechat_qr"
	ChannelEmail    Channel = "email"
	ChannelSMS      Channel = "sms"
	ChannelOther    Channel = "other"
)

// Channels lists the channels in the order the console shows them.
var Channels = []Channel{ChannelWebLink, ChannelPoster, ChannelCard, ChannelPack, ChannelStore, ChannelAd, ChannelWeChatQR, ChannelEmail, ChannelSMS, ChannelOther}

// Valid reports whether c is a known channel.
func (c Channel) Valid() bool {
	for _, v := range Channels {
		if c == v {
			return true
		}
	}
	return false
}

// Status is whether a campaign or touchpoint is in use. A paused touchpoint's tokens are refused (with the
// campaign's fallback page); so are those of a paused or ended campaign.
type Status string

const (
	StatusActive Status = "active"
	StatusPaused Status = "paused"
	StatusEnded  Status = "ended" // campaigns only
	// StatusRevoked is a touchpoint whose every token was revoked: for good, it cannot be resumed.
	StatusRevoked Status = "revoked"
)

// Campaign groups touchpoints under one goal and one period, and gives their links UTM parameters.
type Campaign struct {
	ID          string
	Name        string
	Goal        string
	StartsAt    *time.Time
	EndsAt      *time.Time
	Status      Status
	FallbackURL string // where a refused token of this campaign leads; empty for Hearth's own page
	UTMSource   string
	UTMMedium   string
	UTMCampaign string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Touchpoint is one place a customer can meet the brand: a poster, a card, an ad. Its token is on it.
type Touchpoint struct {
	ID             string
	Number         int64 // short and sequential, it is what tokens name
	Name           string
	Channel        Channel
	DestinationURL string
	CampaignID     string // empty for none
	Location       string // a store or place label
	Owner          string // a person or team label, e.g. the sales rep of a business card
	Status         Status
	LastSerial     int64 // the highest serial number issued
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// TouchStats are a touchpoint's touches so far, counted from the event log.
type TouchStats struct {
	TouchpointID string
	Touches      int64 // by people
	BotTouches   int64 // by bots, link scanners and HEAD requests
	LastTouchAt  *time.Time
}

// TouchpointFilter selects touchpoints to list.
type TouchpointFilter struct {
	CampaignID string
	Channel    Channel
	Status     Status
	Query      string // a part of the name, location or owner
}

// RevocationKind says what a revocation covers.
type RevocationKind string

const (
	RevokeToken      RevocationKind = "token"      // one token, exactly as issued
	RevokeSerials    RevocationKind = "serials"    // a range of serial numbers of a touchpoint
	RevokeTouchpoint RevocationKind = "touchpoint" // every token of a touchpoint, for good
)

// Revocation refuses tokens for good, whatever their signature says.
type Revocation struct {
	ID           string
	TouchpointID string
	Kind         RevocationKind
	Token        string // for RevokeToken
	SerialFrom   int64  // for RevokeSerials, inclusive
	SerialTo     int64
	Reason       string
	CreatedAt    time.Time
}

// covers reports whether r refuses the token s, of touchpoint number's serial.
func (r Revocation) covers(s string, serial int64) bool {
	switch r.Kind {
	case RevokeToken:
		return r.Token == s
	case RevokeSerials:
		return serial >= r.SerialFrom && serial <= r.SerialTo
	case RevokeTouchpoint:
		return true
	}
	return false
}

// StoredKey is a signing key as the store keeps it: its secret sealed with the master key.
type StoredKey struct {
	ID        uint32
	Sealed    []byte
	CreatedAt time.Time
	RetiredAt *time.Time
}

// Store is what the touchpoint part needs from storage.
type Store interface {
	CreateCampaign(ctx context.Context, c Campaign) error
	Campaign(ctx context.Context, id string) (Campaign, error)
	ListCampaigns(ctx context.Context) ([]Campaign, error)
	UpdateCampaign(ctx context.Context, c Campaign) error

	// CreateTouchpoint stores a new touchpoint and returns the number it was given.
	CreateTouchpoint(ctx context.Context, t Touchpoint) (int64, error)
	Touchpoint(ctx context.Context, id string) (Touchpoint, error)
	TouchpointByNumber(ctx context.Context, number int64) (Touchpoint, error)
	ListTouchpoints(ctx context.Context, f TouchpointFilter) ([]Touchpoint, error)
	UpdateTouchpoint(ctx context.Context, t Touchpoint) error
	// ReserveSerials raises a touchpoint's last serial by n and returns the first of the n new ones.
	ReserveSerials(ctx context.Context, touchpointID string, n int64) (int64, error)

	TouchStats(ctx context.Context) ([]TouchStats, error)
	// TouchHours returns a touchpoint's touches per hour in [from, to): the hours with any, in order.
	TouchHours(ctx context.Context, touchpointID string, from, to time.Time) ([]TouchHour, error)
	// CampaignTouchHours is TouchHours summed over the touchpoints in a campaign now.
	CampaignTouchHours(ctx context.Context, campaignID string, from, to time.Time) ([]TouchHour, error)
	// AllTouchHours is TouchHours summed over every touchpoint.
	AllTouchHours(ctx context.Context, from, to time.Time) ([]TouchHour, error)

	CreateRevocation(ctx context.Context, r Revocation) error
	Revocations(ctx context.Context, touchpointID string) ([]Revocation, error)

	BatchStore

	SigningKeys(ctx context.Context) ([]StoredKey, error)
	// CreateSigningKey stores a key and returns the id it was given.
	CreateSigningKey(ctx context.Context, sealed []byte, at time.Time) (uint32, error)
	RetireSigningKey(ctx context.Context, id uint32, at time.Time) error
}

// validateText checks a required or optional label.
func validateText(op, field, v string, required bool, max int) error {
	if required && strings.TrimSpace(v) == "" {
		return hearth.Errorf(hearth.Invalid, op, "The %s is required", field)
	}
	if utf8.RuneCountInString(v) > max {
		return hearth.Errorf(hearth.Invalid, op, "The %s is longer than %d characters", field, max)
	}
	return nil
}

// validPort accepts a URL's port: none, or 1 to 65535.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// validateURL checks a destination or fallback: an absolute http(s) URL. Hearth redirects only to URLs that a
// signed-in marketer saved, never to one a request names.
func validateURL(op, field, v string, required bool) error {
	if v == "" {
		if required {
			return hearth.Errorf(hearth.Invalid, op, "The %s is required", field)
		}
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(v) > 2000 || !validPort(u.Port()) {
		return hearth.Errorf(hearth.Invalid, op, "The %s must be an http or https address, like https://www.example.com/page", field)
	}
	return nil
}
