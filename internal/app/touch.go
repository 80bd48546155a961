package app

import (
	"context"
	"time"

	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// touchResolver lets the collector, which records touches, resolve tokens through the touchpoint part,
// which issues them, without either importing the other's service.
type touchResolver struct{ touch *touchpoint.Service }

func (r touchResolver) ResolveTouch(ctx context.Context, token string, at time.Time) (collect.ResolvedTouch, error) {
	res, err := r.touch.Resolve(ctx, token, at)
	if err != nil {
		return collect.ResolvedTouch{}, err
	}
	out := collect.ResolvedTouch{
		TouchpointID: res.Touchpoint.ID, TouchpointName: res.Touchpoint.Name, Channel: string(res.Touchpoint.Channel),
		Serial: res.Token.Serial, Destination: res.Destination, Refused: string(res.Refused), FallbackURL: res.FallbackURL,
	}
	if res.Campaign != nil {
		out.CampaignID = res.Campaign.ID
	}
	switch res.Refused {
	case touchpoint.RefusedMalformed, touchpoint.RefusedForged, touchpoint.RefusedUnknownKey:
	default:
		out.Known = true
	}
	return out, nil
}

// touchIssuer signs tokens for offline touches that name a touchpoint (and serial) rather than carry its code.
type touchIssuer struct{ touch *touchpoint.Service }

func (i touchIssuer) IssueTouchToken(ctx context.Context, touchpointID string, serial int64) (string, error) {
	t, err := i.touch.Touchpoint(ctx, touchpointID)
	if err != nil {
		return "", err
	}
	return i.touch.IssueToken(t, serial, time.Time{})
}
