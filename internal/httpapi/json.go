package httpapi

import (
	"encoding/json"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/collect"
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
	ID        string             `json:"id"`
	Name      string             `json:"name"`
	Kind      collect.SourceKind `json:"kind"`
	WriteKey  string             `json:"write_key"`
	Enabled   bool               `json:"enabled"`
	CreatedAt time.Time          `json:"created_at"`
	UpdatedAt time.Time          `json:"updated_at"`
	Stats     sourceStatsJSON    `json:"stats"`
}

type sourceStatsJSON struct {
	Accepted    int64      `json:"accepted"`
	Duplicates  int64      `json:"duplicates"`
	Rejected    int64      `json:"rejected"`
	LastEventAt *time.Time `json:"last_event_at"`
}

func toSource(s collect.Source, st collect.SourceStats) sourceJSON {
	return sourceJSON{ID: s.ID, Name: s.Name, Kind: s.Kind, WriteKey: s.WriteKey, Enabled: s.Enabled, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
		Stats: sourceStatsJSON{Accepted: st.Accepted, Duplicates: st.Duplicates, Rejected: st.Rejected, LastEventAt: st.LastEventAt}}
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
