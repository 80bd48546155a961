package httpapi

import (
	"net/http"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// WeChat official accounts and their parametric QR codes.

// wechatAccountRequest is an account's writable fields; absent fields keep their value on PATCH. The secrets
// are write-only: no answer ever carries them.
type wechatAccountRequest struct {
	Name           *string `json:"name"`
	Slug           *string `json:"slug"`
	AppID          *string `json:"app_id"`
	AppSecret      *string `json:"app_secret"`
	Token          *string `json:"token"`
	EncodingAESKey *string `json:"encoding_aes_key"`
	APIBaseURL     *string `json:"api_base_url"`
}

// input checks who may set what: where WeChat's API is called is for admins alone, since the app secret is
// sent there.
func (req wechatAccountRequest) input(p auth.Principal) (touchpoint.WeChatAccountInput, error) {
	if req.APIBaseURL != nil && p.Role != hearth.RoleAdmin {
		return touchpoint.WeChatAccountInput{}, hearth.Errorf(hearth.Forbidden, "httpapi.wechat_account", "Only an admin may set api_base_url.")
	}
	return touchpoint.WeChatAccountInput{Name: req.Name, Slug: req.Slug, AppID: req.AppID, AppSecret: req.AppSecret, Token: req.Token,
		EncodingAESKey: req.EncodingAESKey, APIBaseURL: req.APIBaseURL}, nil
}

// wechatReady refuses when the server was built without WeChat accounts.
func (s *Server) wechatReady(w http.ResponseWriter, r *http.Request) bool {
	if s.WeChat == nil {
		s.fail(w, r, hearth.Errorf(hearth.Unavailable, "httpapi.wechat", "WeChat accounts are not available on this server."))
		return false
	}
	return true
}

func (s *Server) listWeChatAccounts(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if !s.wechatReady(w, r) {
		return
	}
	accounts, err := s.WeChat.Accounts(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(accounts, toWeChatAccount))
}

func (s *Server) createWeChatAccount(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if !s.wechatReady(w, r) {
		return
	}
	var req wechatAccountRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	in, err := req.input(p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	a, err := s.WeChat.CreateAccount(r.Context(), in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toWeChatAccount(a))
}

func (s *Server) getWeChatAccount(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if !s.wechatReady(w, r) {
		return
	}
	a, err := s.WeChat.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toWeChatAccount(a))
}

func (s *Server) updateWeChatAccount(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if !s.wechatReady(w, r) {
		return
	}
	var req wechatAccountRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	in, err := req.input(p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	a, err := s.WeChat.UpdateAccount(r.Context(), r.PathValue("id"), in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toWeChatAccount(a))
}

// createWeChatQR makes a parametric QR code of a touchpoint on an account: 201 for a new code, 200 for the
// permanent one made before.
func (s *Server) createWeChatQR(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if !s.wechatReady(w, r) {
		return
	}
	var req struct {
		AccountID        string `json:"account_id"`
		Permanent        bool   `json:"permanent"`
		ExpiresInDays    int64  `json:"expires_in_days"`
		ExpiresInSeconds int64  `json:"expires_in_seconds"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	const op = "httpapi.wechat_qr"
	if req.ExpiresInDays != 0 && req.ExpiresInSeconds != 0 {
		s.fail(w, r, hearth.Errorf(hearth.Invalid, op, "Give expires_in_days or expires_in_seconds, not both."))
		return
	}
	if req.ExpiresInDays < 0 || req.ExpiresInDays > 30 || req.ExpiresInSeconds < 0 || req.ExpiresInSeconds > int64(touchpoint.MaxWeChatQRLifetime/time.Second) {
		s.fail(w, r, hearth.Errorf(hearth.Invalid, op, "A temporary QR code must expire after 1 minute to 30 days."))
		return
	}
	expiresIn := time.Duration(req.ExpiresInDays)*24*time.Hour + time.Duration(req.ExpiresInSeconds)*time.Second
	code, created, err := s.WeChat.CreateQR(r.Context(), r.PathValue("id"),
		touchpoint.WeChatQRRequest{AccountID: req.AccountID, Permanent: req.Permanent, ExpiresIn: expiresIn})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, toWeChatQR(code))
}

func (s *Server) listWeChatQR(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if !s.wechatReady(w, r) {
		return
	}
	codes, err := s.WeChat.QRCodes(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(codes, toWeChatQR))
}
