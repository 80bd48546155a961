package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/segment"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// Campaigns.

// campaignRequest is a campaign's writable fields; absent fields keep their value on PATCH. A date may be
// cleared with null on PATCH only through clear_starts_at / clear_ends_at, so that absent and null differ.
type campaignRequest struct {
	Name        *string            `json:"name"`
	Goal        *string            `json:"goal"`
	StartsAt    *time.Time         `json:"starts_at"`
	EndsAt      *time.Time         `json:"ends_at"`
	ClearStarts bool               `json:"clear_starts_at"`
	ClearEnds   bool               `json:"clear_ends_at"`
	Status      *touchpoint.Status `json:"status"`
	FallbackURL *string            `json:"fallback_url"`
	UTMSource   *string            `json:"utm_source"`
	UTMMedium   *string            `json:"utm_medium"`
	UTMCampaign *string            `json:"utm_campaign"`
}

func (req campaignRequest) apply(c *touchpoint.Campaign) {
	set(&c.Name, req.Name)
	set(&c.Goal, req.Goal)
	set(&c.Status, req.Status)
	set(&c.FallbackURL, req.FallbackURL)
	set(&c.UTMSource, req.UTMSource)
	set(&c.UTMMedium, req.UTMMedium)
	set(&c.UTMCampaign, req.UTMCampaign)
	if req.StartsAt != nil {
		t := req.StartsAt.UTC()
		c.StartsAt = &t
	}
	if req.EndsAt != nil {
		t := req.EndsAt.UTC()
		c.EndsAt = &t
	}
	if req.ClearStarts {
		c.StartsAt = nil
	}
	if req.ClearEnds {
		c.EndsAt = nil
	}
}

// set copies an optional request field over a value.
func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (s *Server) listCampaigns(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	campaigns, err := s.Touchpoints.Campaigns(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	totals, err := s.Touchpoints.CampaignTotals(r.Context(), "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(campaigns, func(c touchpoint.Campaign) campaignJSON { return toCampaign(c, totals[c.ID]) }))
}

func (s *Server) createCampaign(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req campaignRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	var c touchpoint.Campaign
	req.apply(&c)
	c, err := s.Touchpoints.CreateCampaign(r.Context(), c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toCampaign(c, touchpoint.CampaignTotals{}))
}

func (s *Server) getCampaign(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	c, err := s.Touchpoints.Campaign(r.Context(), r.PathValue("id"))
	s.answerCampaign(w, r, c, err)
}

func (s *Server) updateCampaign(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req campaignRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	s.changeCampaign(w, r, req.apply)
}

func (s *Server) pauseCampaign(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	s.changeCampaign(w, r, func(c *touchpoint.Campaign) { c.Status = touchpoint.StatusPaused })
}

func (s *Server) resumeCampaign(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	s.changeCampaign(w, r, func(c *touchpoint.Campaign) { c.Status = touchpoint.StatusActive })
}

func (s *Server) changeCampaign(w http.ResponseWriter, r *http.Request, change func(*touchpoint.Campaign)) {
	c, err := s.Touchpoints.Campaign(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	change(&c)
	c, err = s.Touchpoints.UpdateCampaign(r.Context(), c)
	s.answerCampaign(w, r, c, err)
}

func (s *Server) answerCampaign(w http.ResponseWriter, r *http.Request, c touchpoint.Campaign, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	totals, err := s.Touchpoints.CampaignTotals(r.Context(), c.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toCampaign(c, totals[c.ID]))
}

// Touchpoints.

type touchpointRequest struct {
	Name           *string             `json:"name"`
	Channel        *touchpoint.Channel `json:"channel"`
	DestinationURL *string             `json:"destination_url"`
	CampaignID     *string             `json:"campaign_id"`
	Location       *string             `json:"location"`
	Owner          *string             `json:"owner"`
	Status         *touchpoint.Status  `json:"status"`
}

func (req touchpointRequest) apply(t *touchpoint.Touchpoint) {
	set(&t.Name, req.Name)
	set(&t.Channel, req.Channel)
	set(&t.DestinationURL, req.DestinationURL)
	set(&t.CampaignID, req.CampaignID)
	set(&t.Location, req.Location)
	set(&t.Owner, req.Owner)
	set(&t.Status, req.Status)
}

func (s *Server) listTouchpoints(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	q := r.URL.Query()
	f := touchpoint.TouchpointFilter{CampaignID: q.Get("campaign_id"), Channel: touchpoint.Channel(q.Get("channel")),
		Status: touchpoint.Status(q.Get("status")), Query: q.Get("q")}
	tps, err := s.Touchpoints.Touchpoints(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stats, err := s.Touchpoints.TouchStats(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := list[touchpointJSON]{Items: make([]touchpointJSON, 0, len(tps))}
	for _, tp := range tps {
		j, err := s.toTouchpoint(tp, stats[tp.ID])
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out.Items = append(out.Items, j)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createTouchpoint(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req touchpointRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	var t touchpoint.Touchpoint
	req.apply(&t)
	t, err := s.Touchpoints.CreateTouchpoint(r.Context(), t)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	j, err := s.toTouchpoint(t, touchpoint.TouchStats{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, j)
}

func (s *Server) getTouchpoint(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	t, err := s.Touchpoints.Touchpoint(r.Context(), r.PathValue("id"))
	s.answerTouchpoint(w, r, t, err)
}

func (s *Server) updateTouchpoint(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req touchpointRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.Touchpoints.Touchpoint(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req.apply(&t)
	t, err = s.Touchpoints.UpdateTouchpoint(r.Context(), t)
	s.answerTouchpoint(w, r, t, err)
}

func (s *Server) pauseTouchpoint(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	t, err := s.Touchpoints.SetTouchpointStatus(r.Context(), r.PathValue("id"), touchpoint.StatusPaused)
	s.answerTouchpoint(w, r, t, err)
}

func (s *Server) resumeTouchpoint(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	t, err := s.Touchpoints.SetTouchpointStatus(r.Context(), r.PathValue("id"), touchpoint.StatusActive)
	s.answerTouchpoint(w, r, t, err)
}

func (s *Server) answerTouchpoint(w http.ResponseWriter, r *http.Request, t touchpoint.Touchpoint, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stats, err := s.Touchpoints.TouchStats(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	j, err := s.toTouchpoint(t, stats[t.ID])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// issueToken signs a token of a touchpoint with a serial it has issued, or an expiry (a link for one
// mailing that stops working after a month), or both.
func (s *Server) issueToken(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req struct {
		Serial    int64      `json:"serial"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.Touchpoints.Touchpoint(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var expires time.Time
	if req.ExpiresAt != nil {
		expires = *req.ExpiresAt
	}
	tok, err := s.Touchpoints.IssueToken(t, req.Serial, expires)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, tokenJSON{Token: tok, URL: s.Touchpoints.Link(tok), Serial: req.Serial, ExpiresAt: req.ExpiresAt})
}

// touchpointQR serves a touchpoint's QR code (or one of its serials'), as PNG or SVG.
func (s *Server) touchpointQR(format touchpoint.QRFormat) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
		q := r.URL.Query()
		var opts touchpoint.QROptions
		var err error
		for _, p := range []struct {
			name string
			dst  *int
		}{{"size", &opts.Size}, {"margin", &opts.Margin}} {
			if v := q.Get(p.name); v != "" {
				if *p.dst, err = strconv.Atoi(v); err != nil || *p.dst < 0 { // a negative margin is no sentinel here
					s.fail(w, r, hearth.Errorf(hearth.Invalid, "httpapi.qr", "The parameter %s must be a whole number, 0 or more.", p.name))
					return
				}
			}
		}
		if q.Get("margin") != "" && opts.Margin == 0 { // asked for none, not for the default
			opts.Margin = touchpoint.QRNoMargin
		}
		opts.Level = q.Get("level")
		if opts, err = opts.Normalize(); err != nil {
			s.fail(w, r, err)
			return
		}
		serial, err := queryInt(r, "serial", 0, 1<<62)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		t, err := s.Touchpoints.Touchpoint(r.Context(), r.PathValue("id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		tok, err := s.Touchpoints.IssueToken(t, serial, time.Time{})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		var buf bytes.Buffer
		if err := touchpoint.WriteQR(&buf, format, s.Touchpoints.Link(tok), opts); err != nil {
			s.fail(w, r, err)
			return
		}
		contentType := "image/png"
		if format == touchpoint.QRSVG {
			contentType = "image/svg+xml"
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "private, max-age=300")
		if q.Get("download") != "" {
			w.Header().Set("Content-Disposition", `attachment; filename="`+qrFileName(t, serial, string(format))+`"`)
		}
		w.Write(buf.Bytes())
	}
}

// qrFileName names a downloaded code after its touchpoint's number, which is ASCII and safe in a header.
func qrFileName(t touchpoint.Touchpoint, serial int64, ext string) string {
	name := "touchpoint-" + strconv.FormatInt(t.Number, 10)
	if serial > 0 {
		name += "-" + strconv.FormatInt(serial, 10)
	}
	return name + "." + ext
}

// Revocations.

// touchHours serves a touchpoint's touches per hour over the last days (1 to 400, 30 by default): the hours
// that have any, oldest first, for its chart of touches over time.
func (s *Server) touchHours(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	s.serveTouchHours(w, r, s.Touchpoints.TouchHours)
}

// campaignTouchHours serves the same, summed over the touchpoints in a campaign.
func (s *Server) campaignTouchHours(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	s.serveTouchHours(w, r, s.Touchpoints.CampaignTouchHours)
}

// allTouchHours serves the same, summed over every touchpoint.
func (s *Server) allTouchHours(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	s.serveTouchHours(w, r, func(ctx context.Context, _ string, from, to time.Time) ([]touchpoint.TouchHour, error) {
		return s.Touchpoints.AllTouchHours(ctx, from, to)
	})
}

func (s *Server) serveTouchHours(w http.ResponseWriter, r *http.Request, read func(ctx context.Context, id string, from, to time.Time) ([]touchpoint.TouchHour, error)) {
	days, err := queryInt(r, "days", 30, 400)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The window ends with the hour in progress, by the system's clock (the server has no Clock of its own).
	to := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	hours, err := read(r.Context(), r.PathValue("id"), to.Add(-time.Duration(max(days, 1))*24*time.Hour), to)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]touchHourJSON, 0, len(hours))
	for _, h := range hours {
		out = append(out, touchHourJSON{Hour: h.Hour, Touches: h.Touches, BotTouches: h.BotTouches})
	}
	writeJSON(w, http.StatusOK, struct {
		Hours []touchHourJSON `json:"hours"`
	}{out})
}

// touchpointPeople serves how many people a touchpoint reached (a person who touched it, bots never), how
// many of them have reached each lifecycle step, and a few of them.
func (s *Server) touchpointPeople(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if _, err := s.Touchpoints.Touchpoint(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	s.servePeopleReached(w, r, segment.Touched{TouchpointID: r.PathValue("id")})
}

// campaignPeople serves the same for the touchpoints of a campaign: each person once.
func (s *Server) campaignPeople(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if _, err := s.Touchpoints.Campaign(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	s.servePeopleReached(w, r, segment.Touched{CampaignID: r.PathValue("id")})
}

// servePeopleReached counts the people a touched condition holds for, as a segment would: the same numbers
// as a segment of that rule.
func (s *Server) servePeopleReached(w http.ResponseWriter, r *http.Request, t segment.Touched) {
	if !s.segmentsReady(w, r) {
		return
	}
	start := time.Now()
	f, err := s.Segments.Funnel(r.Context(), segment.Rule{Touched: &t})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	took := time.Since(start)
	sample, err := s.Profiles.ProfileSummaries(r.Context(), f.Sample)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	steps := make([]stepCountJSON, 0, len(f.Steps))
	for i, n := range f.Steps {
		steps = append(steps, stepCountJSON{segment.Stages[i+1], n})
	}
	writeJSON(w, http.StatusOK, struct {
		Profiles            int64                `json:"profiles"`
		Steps               []stepCountJSON      `json:"steps"`
		ConvertedAfterTouch int64                `json:"converted_after_touch"`
		Sample              []profileSummaryJSON `json:"sample"`
		TookMS              int64                `json:"took_ms"`
	}{f.Size, steps, f.ConvertedAfterTouch, listOf(sample, toProfileSummary).Items, took.Milliseconds()})
}

type touchHourJSON struct {
	Hour       time.Time `json:"hour"`
	Touches    int64     `json:"touches"`
	BotTouches int64     `json:"bot_touches"`
}

func (s *Server) listRevocations(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if _, err := s.Touchpoints.Touchpoint(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	rs, err := s.Touchpoints.Revocations(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(rs, toRevocation))
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req struct {
		Kind       touchpoint.RevocationKind `json:"kind"`
		Token      string                    `json:"token"`
		SerialFrom int64                     `json:"serial_from"`
		SerialTo   int64                     `json:"serial_to"`
		Reason     string                    `json:"reason"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	rev, err := s.Touchpoints.Revoke(r.Context(), touchpoint.Revocation{TouchpointID: r.PathValue("id"), Kind: req.Kind, Token: req.Token,
		SerialFrom: req.SerialFrom, SerialTo: req.SerialTo, Reason: req.Reason})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toRevocation(rev))
}

// Signing keys.

func (s *Server) listSigningKeys(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	keys, signer, err := s.Touchpoints.SigningKeys(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(keys, func(k touchpoint.StoredKey) signingKeyJSON {
		return signingKeyJSON{ID: k.ID, CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt, Signing: k.ID == signer}
	}))
}

func (s *Server) rotateSigningKey(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if _, err := s.Touchpoints.RotateKey(r.Context()); err != nil {
		s.fail(w, r, err)
		return
	}
	s.listSigningKeys(w, r, auth.Principal{})
}

func (s *Server) retireSigningKey(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
	if err != nil {
		s.fail(w, r, hearth.Errorf(hearth.NotFound, "httpapi.retire_key", "There is no signing key %q.", r.PathValue("id")))
		return
	}
	if err := s.Touchpoints.RetireKey(r.Context(), uint32(id)); err != nil {
		s.fail(w, r, err)
		return
	}
	s.listSigningKeys(w, r, auth.Principal{})
}
