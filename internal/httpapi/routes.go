package httpapi

import (
	"net/http"
	"net/http/pprof"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// routes is the whole HTTP surface of this package. Every /api/v1 route names who may call it.
func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.Handle("GET /metrics", s.metricsHandler())
	s.mux.Handle("GET /console/", s.Console)
	s.mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))

	s.api("POST /api/v1/auth/login", public, s.login)
	s.api("GET /api/v1/auth/session", public, s.session)
	s.api("POST /api/v1/auth/logout", public, s.logout)
	s.api("POST /api/v1/auth/password", readers, s.changePassword)
	s.api("GET /api/v1/auth/setup", public, s.checkSetup)
	s.api("POST /api/v1/auth/setup", public, s.completeSetup)

	s.api("GET /api/v1/system", readers, s.system)
	s.api("GET /api/v1/system/processing", readers, s.processing)
	s.api("GET /api/v1/system/set-aside", admins, s.setAside)

	s.api("GET /api/v1/sources", readers, s.listSources)
	s.api("POST /api/v1/sources", writers, s.createSource)
	s.api("GET /api/v1/sources/{id}", readers, s.getSource)
	s.api("PATCH /api/v1/sources/{id}", writers, s.editSource)
	s.api("POST /api/v1/sources/{id}/disable", writers, s.disableSource)
	s.api("POST /api/v1/sources/{id}/enable", writers, s.enableSource)
	s.api("POST /api/v1/sources/{id}/write-key", writers, s.regenerateWriteKey)
	s.api("GET /api/v1/sources/{id}/events", readers, s.sourceEvents)
	s.api("GET /api/v1/sources/{id}/rejections", readers, s.sourceRejections)

	s.api("GET /api/v1/campaigns", readers, s.listCampaigns)
	s.api("POST /api/v1/campaigns", writers, s.createCampaign)
	s.api("GET /api/v1/campaigns/{id}", readers, s.getCampaign)
	s.api("PATCH /api/v1/campaigns/{id}", writers, s.updateCampaign)
	s.api("POST /api/v1/campaigns/{id}/pause", writers, s.pauseCampaign)
	s.api("POST /api/v1/campaigns/{id}/resume", writers, s.resumeCampaign)
	s.api("GET /api/v1/campaigns/{id}/touches", readers, s.campaignTouchHours)
	s.api("GET /api/v1/campaigns/{id}/people", readers, s.campaignPeople)

	s.api("GET /api/v1/touchpoints", readers, s.listTouchpoints)
	s.api("POST /api/v1/touchpoints", writers, s.createTouchpoint)
	s.api("GET /api/v1/touchpoints/{id}", readers, s.getTouchpoint)
	s.api("PATCH /api/v1/touchpoints/{id}", writers, s.updateTouchpoint)
	s.api("POST /api/v1/touchpoints/{id}/pause", writers, s.pauseTouchpoint)
	s.api("POST /api/v1/touchpoints/{id}/resume", writers, s.resumeTouchpoint)
	s.api("POST /api/v1/touchpoints/{id}/tokens", writers, s.issueToken)
	s.api("GET /api/v1/touchpoints/{id}/qr.png", readers, s.touchpointQR(touchpoint.QRPNG))
	s.api("GET /api/v1/touchpoints/{id}/qr.svg", readers, s.touchpointQR(touchpoint.QRSVG))
	s.api("GET /api/v1/touchpoints/{id}/touches", readers, s.touchHours)
	s.api("GET /api/v1/touchpoints/{id}/people", readers, s.touchpointPeople)
	s.api("GET /api/v1/touchpoints/{id}/revocations", readers, s.listRevocations)
	s.api("POST /api/v1/touchpoints/{id}/revocations", writers, s.revoke)
	s.api("GET /api/v1/touchpoints/{id}/code-batches", readers, s.listCodeBatches)
	s.api("POST /api/v1/touchpoints/{id}/code-batches", writers, s.createCodeBatch)
	s.api("GET /api/v1/code-batches/{id}", readers, s.getCodeBatch)
	s.api("GET /api/v1/code-batches/{id}/download", readers, s.downloadCodeBatch)
	s.api("POST /api/v1/code-batches/{id}/redraw", writers, s.redrawCodeBatch)
	s.api("GET /api/v1/touchpoints/{id}/wechat-qr", readers, s.listWeChatQR)
	s.api("POST /api/v1/touchpoints/{id}/wechat-qr", writers, s.createWeChatQR)

	s.api("GET /api/v1/wechat-accounts", readers, s.listWeChatAccounts)
	s.api("POST /api/v1/wechat-accounts", writers, s.createWeChatAccount)
	s.api("GET /api/v1/wechat-accounts/{id}", readers, s.getWeChatAccount)
	s.api("PATCH /api/v1/wechat-accounts/{id}", writers, s.updateWeChatAccount)

	s.api("GET /api/v1/profiles", readers, s.searchProfiles)
	s.api("GET /api/v1/profiles/lookup", readers, s.lookupProfile)
	s.api("GET /api/v1/profiles/stages", readers, s.profileStages)
	s.api("GET /api/v1/profiles/{id}", readers, s.getProfile)
	s.api("GET /api/v1/profiles/{id}/events", readers, s.profileEvents)
	s.api("GET /api/v1/profiles/{id}/segments", readers, s.profileSegments)
	s.api("POST /api/v1/profiles/{id}/unmerge", admins, s.unmergeProfile)
	s.api("GET /api/v1/unmerges/{id}", readers, s.getUnmerge)

	s.api("GET /api/v1/segments", readers, s.listSegments)
	s.api("POST /api/v1/segments", writers, s.createSegment)
	s.api("POST /api/v1/segments/count", readers, s.countSegment) // stores nothing
	s.api("GET /api/v1/segments/{id}", readers, s.getSegment)
	s.api("PATCH /api/v1/segments/{id}", writers, s.updateSegment)
	s.api("DELETE /api/v1/segments/{id}", writers, s.deleteSegment)
	s.api("PUT /api/v1/segments/{id}/list", writers, s.replaceSegmentList)
	s.api("GET /api/v1/segments/{id}/members", readers, s.segmentMembers)
	s.api("GET /api/v1/segments/{id}/members.csv", readers, s.exportSegmentMembers)
	s.api("GET /api/v1/segments/{id}/sizes", readers, s.segmentSizes)

	s.api("GET /api/v1/touches", readers, s.allTouchHours)
	s.api("POST /api/v1/touches", writers, s.recordTouch)
	s.api("POST /api/v1/touches/import", writers, s.importTouches)

	s.api("GET /api/v1/settings/profiles", readers, s.getProfileSettings)
	s.api("PUT /api/v1/settings/profiles", admins, s.putProfileSettings)

	s.api("GET /api/v1/signing-keys", admins, s.listSigningKeys)
	s.api("POST /api/v1/signing-keys", admins, s.rotateSigningKey)
	s.api("POST /api/v1/signing-keys/{id}/retire", admins, s.retireSigningKey)

	s.api("GET /api/v1/users", admins, s.listUsers)
	s.api("POST /api/v1/users", admins, s.createUser)
	s.api("PATCH /api/v1/users/{id}", admins, s.updateUser)

	s.api("GET /api/v1/api-keys", admins, s.listAPIKeys)
	s.api("POST /api/v1/api-keys", admins, s.createAPIKey)
	s.api("DELETE /api/v1/api-keys/{id}", admins, s.revokeAPIKey)

	// Go's profiler, for operators chasing a slow server: admins only.
	s.api("GET /debug/pprof/{name...}", admins, func(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
		switch r.PathValue("name") {
		case "profile":
			pprof.Profile(w, r)
		case "trace":
			pprof.Trace(w, r)
		case "":
			pprof.Index(w, r)
		default:
			pprof.Handler(r.PathValue("name")).ServeHTTP(w, r)
		}
	})

	// Anything else under /api/ answers a JSON 404 (or 401 without credentials), never the console.
	s.api("/api/", readers, func(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
		s.fail(w, r, hearth.Errorf(hearth.NotFound, "httpapi.route", "There is no %s %s in the API.", r.Method, r.URL.Path))
	})
}
