package httpapi

import (
	"encoding/json"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// The admin API's JSON shapes, kept here rather than as tags on domain types.

type userJSON struct {
	ID          string      `json:"id"`
	Email       string      `json:"email"`
	Name        string      `json:"name"`
	Role        hearth.Role `json:"role"`
	Disabled    bool        `json:"disabled"`
	CreatedAt   time.Time   `json:"created_at"`
	LastLoginAt *time.Time  `json:"last_login_at"`
}

func toUser(u auth.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, Disabled: u.Disabled, CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt}
}

type sessionJSON struct {
	User      userJSON `json:"user"`
	CSRFToken string   `json:"csrf_token"`
}

type sourceJSON struct {
	ID       string             `json:"id"`
	Name     string             `json:"name"`
	Kind     collect.SourceKind `json:"kind"`
	WriteKey string             `json:"write_key"`
	Enabled  bool               `json:"enabled"`
	// RateLimit is the source's own, null for the server's default; EffectiveRateLimit is the one that
	// applies, null for none. Events per second per node.
	RateLimit          *float64        `json:"rate_limit"`
	EffectiveRateLimit *float64        `json:"effective_rate_limit"`
	CreatedAt          time.Time       `json:"created_at"`
	UpdatedAt          time.Time       `json:"updated_at"`
	Stats              sourceStatsJSON `json:"stats"`
}

type sourceStatsJSON struct {
	Accepted    int64      `json:"accepted"`
	Duplicates  int64      `json:"duplicates"`
	Rejected    int64      `json:"rejected"`
	LastEventAt *time.Time `json:"last_event_at"`
	// Throttled counts the events its rate limit refused with a 429, stored every few seconds.
	Throttled       int64      `json:"throttled"`
	LastThrottledAt *time.Time `json:"last_throttled_at"`
}

func (s *Server) toSource(src collect.Source, st collect.SourceStats) sourceJSON {
	positive := func(v float64) *float64 {
		if v > 0 {
			return &v
		}
		return nil
	}
	effective := src.RateLimit
	if effective <= 0 {
		effective = s.DefaultSourceRate
	}
	return sourceJSON{ID: src.ID, Name: src.Name, Kind: src.Kind, WriteKey: src.WriteKey, Enabled: src.Enabled,
		RateLimit: positive(src.RateLimit), EffectiveRateLimit: positive(effective), CreatedAt: src.CreatedAt, UpdatedAt: src.UpdatedAt,
		Stats: sourceStatsJSON{Accepted: st.Accepted, Duplicates: st.Duplicates, Rejected: st.Rejected, LastEventAt: st.LastEventAt,
			Throttled: src.Throttled, LastThrottledAt: src.LastThrottledAt}}
}

type eventJSON struct {
	Seq         int64           `json:"seq"`
	MessageID   string          `json:"message_id"`
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	UserID      string          `json:"user_id"`
	AnonymousID string          `json:"anonymous_id"`
	Timestamp   time.Time       `json:"timestamp"`
	ReceivedAt  time.Time       `json:"received_at"`
	Bot         bool            `json:"bot"`
	Payload     json.RawMessage `json:"payload"`
}

func toEvent(e collect.Event) eventJSON {
	return eventJSON{Seq: e.Seq, MessageID: e.MessageID, Type: e.Type, Name: e.Name, UserID: e.UserID, AnonymousID: e.AnonymousID,
		Timestamp: e.Timestamp, ReceivedAt: e.ReceivedAt, Bot: e.Bot, Payload: e.Payload}
}

type rejectedJSON struct {
	ID         int64     `json:"id"`
	ReceivedAt time.Time `json:"received_at"`
	Reason     string    `json:"reason"`
	Payload    string    `json:"payload"`
}

func toRejected(r collect.RejectedEvent) rejectedJSON {
	return rejectedJSON{ID: r.ID, ReceivedAt: r.ReceivedAt, Reason: r.Reason, Payload: r.Payload}
}

type apiKeyJSON struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	Role       hearth.Role `json:"role"`
	Prefix     string      `json:"prefix"`
	CreatedAt  time.Time   `json:"created_at"`
	LastUsedAt *time.Time  `json:"last_used_at"`
	RevokedAt  *time.Time  `json:"revoked_at"`
	Key        string      `json:"key,omitempty"` // only in the answer that creates it
}

func toAPIKey(k auth.APIKey) apiKeyJSON {
	return apiKeyJSON{ID: k.ID, Name: k.Name, Role: k.Role, Prefix: k.Prefix, CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt}
}

type list[T any] struct {
	Items []T `json:"items"`
}

func listOf[S, T any](items []S, conv func(S) T) list[T] {
	out := list[T]{Items: make([]T, 0, len(items))}
	for _, it := range items {
		out.Items = append(out.Items, conv(it))
	}
	return out
}

type campaignTotalsJSON struct {
	Touchpoints int   `json:"touchpoints"`
	Touches     int64 `json:"touches"`
}

type campaignJSON struct {
	ID          string             `json:"id"`
	Name        string             `json:"name"`
	Goal        string             `json:"goal"`
	StartsAt    *time.Time         `json:"starts_at"`
	EndsAt      *time.Time         `json:"ends_at"`
	Status      touchpoint.Status  `json:"status"`
	FallbackURL string             `json:"fallback_url"`
	UTMSource   string             `json:"utm_source"`
	UTMMedium   string             `json:"utm_medium"`
	UTMCampaign string             `json:"utm_campaign"`
	CreatedAt   time.Time          `json:"created_at"`
	UpdatedAt   time.Time          `json:"updated_at"`
	Totals      campaignTotalsJSON `json:"totals"`
}

func toCampaign(c touchpoint.Campaign, t touchpoint.CampaignTotals) campaignJSON {
	totals := campaignTotalsJSON{Touchpoints: t.Touchpoints, Touches: t.Touches}
	return campaignJSON{ID: c.ID, Name: c.Name, Goal: c.Goal, StartsAt: c.StartsAt, EndsAt: c.EndsAt, Status: c.Status, FallbackURL: c.FallbackURL,
		UTMSource: c.UTMSource, UTMMedium: c.UTMMedium, UTMCampaign: c.UTMCampaign, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Totals: totals}
}

type touchpointJSON struct {
	ID             string             `json:"id"`
	Number         int64              `json:"number"`
	Name           string             `json:"name"`
	Channel        touchpoint.Channel `json:"channel"`
	DestinationURL string             `json:"destination_url"`
	CampaignID     *string            `json:"campaign_id"`
	Location       string             `json:"location"`
	Owner          string             `json:"owner"`
	Status         touchpoint.Status  `json:"status"`
	Token          string             `json:"token"`
	URL            string             `json:"url"`
	LastSerial     int64              `json:"last_serial"`
	CreatedAt      time.Time          `json:"created_at"`
	UpdatedAt      time.Time          `json:"updated_at"`
	Stats          touchStatsJSON     `json:"stats"`
}

type touchStatsJSON struct {
	Touches     int64      `json:"touches"`
	BotTouches  int64      `json:"bot_touches"`
	LastTouchAt *time.Time `json:"last_touch_at"`
}

// toTouchpoint shows a touchpoint with its own token and touch link, signed with the current key.
func (s *Server) toTouchpoint(t touchpoint.Touchpoint, st touchpoint.TouchStats) (touchpointJSON, error) {
	tok, err := s.Touchpoints.Token(t, 0, time.Time{})
	if err != nil {
		return touchpointJSON{}, err
	}
	var campaign *string
	if t.CampaignID != "" {
		campaign = &t.CampaignID
	}
	return touchpointJSON{ID: t.ID, Number: t.Number, Name: t.Name, Channel: t.Channel, DestinationURL: t.DestinationURL, CampaignID: campaign,
		Location: t.Location, Owner: t.Owner, Status: t.Status, Token: tok, URL: s.Touchpoints.Link(tok), LastSerial: t.LastSerial,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, Stats: touchStatsJSON{Touches: st.Touches, BotTouches: st.BotTouches, LastTouchAt: st.LastTouchAt}}, nil
}

type tokenJSON struct {
	Token     string     `json:"token"`
	URL       string     `json:"url"`
	Serial    int64      `json:"serial"`
	ExpiresAt *time.Time `json:"expires_at"`
}

type revocationJSON struct {
	ID         string                    `json:"id"`
	Kind       touchpoint.RevocationKind `json:"kind"`
	Token      string                    `json:"token,omitempty"`
	SerialFrom int64                     `json:"serial_from,omitempty"`
	SerialTo   int64                     `json:"serial_to,omitempty"`
	Reason     string                    `json:"reason"`
	CreatedAt  time.Time                 `json:"created_at"`
}

func toRevocation(r touchpoint.Revocation) revocationJSON {
	return revocationJSON{ID: r.ID, Kind: r.Kind, Token: r.Token, SerialFrom: r.SerialFrom, SerialTo: r.SerialTo, Reason: r.Reason, CreatedAt: r.CreatedAt}
}

type signingKeyJSON struct {
	ID        uint32     `json:"id"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at"`
	Signing   bool       `json:"signing"` // the key that signs new tokens
}

type wechatAccountJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Slug        string    `json:"slug"`
	AppID       string    `json:"app_id"`
	SourceID    string    `json:"source_id"`
	SafeMode    bool      `json:"safe_mode"`
	CallbackURL string    `json:"callback_url"`
	APIBaseURL  string    `json:"api_base_url,omitempty"` // set by an admin for a stand-in or proxy; not a console field
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func toWeChatAccount(a touchpoint.WeChatAccount) wechatAccountJSON {
	return wechatAccountJSON{ID: a.ID, Name: a.Name, Slug: a.Slug, AppID: a.AppID, SourceID: a.SourceID, SafeMode: a.SafeMode,
		CallbackURL: a.CallbackURL, APIBaseURL: a.APIBaseURL, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

type wechatQRJSON struct {
	ID           string     `json:"id"`
	AccountID    string     `json:"account_id"`
	TouchpointID string     `json:"touchpoint_id"`
	Ticket       string     `json:"ticket"`
	URL          string     `json:"url"`
	ImageURL     string     `json:"image_url"`
	Permanent    bool       `json:"permanent"`
	ExpiresAt    *time.Time `json:"expires_at"`
	CreatedAt    time.Time  `json:"created_at"`
}

func toWeChatQR(c touchpoint.WeChatQRCode) wechatQRJSON {
	return wechatQRJSON{ID: c.ID, AccountID: c.AccountID, TouchpointID: c.TouchpointID, Ticket: c.Ticket, URL: c.URL, ImageURL: c.ImageURL,
		Permanent: c.Permanent, ExpiresAt: c.ExpiresAt, CreatedAt: c.CreatedAt}
}

type codeBatchJSON struct {
	ID           string                 `json:"id"`
	TouchpointID string                 `json:"touchpoint_id"`
	FirstSerial  int64                  `json:"first_serial"`
	LastSerial   int64                  `json:"last_serial"`
	Count        int64                  `json:"count"`
	Format       touchpoint.QRFormat    `json:"format"`
	Size         int                    `json:"size"`
	Margin       int                    `json:"margin"` // 0 for none
	Level        string                 `json:"level"`
	ExpiresAt    *time.Time             `json:"expires_at"`
	Status       touchpoint.BatchStatus `json:"status"`
	Done         int64                  `json:"done"`      // codes drawn so far
	ZIPBytes     int64                  `json:"zip_bytes"` // the download's size, once done
	CreatedAt    time.Time              `json:"created_at"`
	StartedAt    *time.Time             `json:"started_at"`
	FinishedAt   *time.Time             `json:"finished_at"`
	Error        *string                `json:"error"`        // why it failed
	DownloadURL  *string                `json:"download_url"` // once done
}

func toCodeBatch(b touchpoint.CodeBatch) codeBatchJSON {
	j := codeBatchJSON{ID: b.ID, TouchpointID: b.TouchpointID, FirstSerial: b.FirstSerial, LastSerial: b.LastSerial(), Count: b.Count,
		Format: b.Format, Size: b.Options.Size, Margin: max(b.Options.Margin, 0), Level: b.Options.Level, ExpiresAt: b.ExpiresAt, Status: b.Status,
		Done: b.Done, ZIPBytes: b.ZIPSize, CreatedAt: b.CreatedAt, StartedAt: b.StartedAt, FinishedAt: b.FinishedAt}
	if b.Status == touchpoint.BatchFailed {
		j.Error = &b.Error
	}
	if b.Status == touchpoint.BatchDone {
		u := codeBatchPath(b.ID) + "/download"
		j.DownloadURL = &u
	}
	return j
}
