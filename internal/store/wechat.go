package store

import (
	"context"
	"database/sql"

	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// WeChat official accounts and their parametric QR codes.

const wechatAccountColumns = `id, name, slug, app_id, app_secret, token, encoding_aes_key, source_id, api_base_url, created_at, updated_at`

func scanWeChatAccount(row interface{ Scan(...any) error }) (touchpoint.StoredWeChatAccount, error) {
	var a touchpoint.StoredWeChatAccount
	err := row.Scan(&a.ID, &a.Name, &a.Slug, &a.AppID, &a.AppSecret, &a.Token, &a.EncodingAESKey, &a.SourceID, &a.APIBaseURL, &a.CreatedAt, &a.UpdatedAt)
	if len(a.EncodingAESKey) == 0 {
		a.EncodingAESKey = nil
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, err
}

// nullBytes turns an optional sealed secret into a parameter.
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// CreateWeChatAccount stores a new account. A taken slug or AppID is a Conflict.
func (db *DB) CreateWeChatAccount(ctx context.Context, a touchpoint.StoredWeChatAccount) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO wechat_accounts (`+wechatAccountColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		a.ID, a.Name, a.Slug, a.AppID, a.AppSecret, a.Token, nullBytes(a.EncodingAESKey), a.SourceID, a.APIBaseURL, a.CreatedAt.UTC(), a.UpdatedAt.UTC())
	return db.wrap("store.create_wechat_account", err)
}

// WeChatAccount returns an account by id.
func (db *DB) WeChatAccount(ctx context.Context, id string) (touchpoint.StoredWeChatAccount, error) {
	a, err := scanWeChatAccount(db.read.QueryRowContext(ctx, `SELECT `+wechatAccountColumns+` FROM wechat_accounts WHERE id = $1`, id))
	if err == sql.ErrNoRows {
		return a, notFound("store.wechat_account", "WeChat account")
	}
	return a, db.wrap("store.wechat_account", err)
}

// WeChatAccountBySlug returns the account whose callback URL ends in slug.
func (db *DB) WeChatAccountBySlug(ctx context.Context, slug string) (touchpoint.StoredWeChatAccount, error) {
	a, err := scanWeChatAccount(db.read.QueryRowContext(ctx, `SELECT `+wechatAccountColumns+` FROM wechat_accounts WHERE slug = $1`, slug))
	if err == sql.ErrNoRows {
		return a, notFound("store.wechat_account_by_slug", "WeChat account")
	}
	return a, db.wrap("store.wechat_account_by_slug", err)
}

// ListWeChatAccounts lists the accounts, newest first.
func (db *DB) ListWeChatAccounts(ctx context.Context) ([]touchpoint.StoredWeChatAccount, error) {
	return queryAll(ctx, db, "store.list_wechat_accounts", scanWeChatAccount, `SELECT `+wechatAccountColumns+` FROM wechat_accounts ORDER BY id DESC`)
}

// UpdateWeChatAccount saves an account's fields and secrets; its source stays. A taken slug or AppID is a
// Conflict.
func (db *DB) UpdateWeChatAccount(ctx context.Context, a touchpoint.StoredWeChatAccount) error {
	const op = "store.update_wechat_account"
	res, err := db.write.ExecContext(ctx, `UPDATE wechat_accounts SET name = $2, slug = $3, app_id = $4, app_secret = $5, token = $6,
		encoding_aes_key = $7, api_base_url = $8, updated_at = $9 WHERE id = $1`,
		a.ID, a.Name, a.Slug, a.AppID, a.AppSecret, a.Token, nullBytes(a.EncodingAESKey), a.APIBaseURL, a.UpdatedAt.UTC())
	if err != nil {
		return db.wrap(op, err)
	}
	return oneRow(res, op, "WeChat account")
}

const wechatQRColumns = `id, account_id, touchpoint_id, scene, ticket, url, image_url, permanent, expires_at, created_at`

func scanWeChatQRCode(row interface{ Scan(...any) error }) (touchpoint.WeChatQRCode, error) {
	var c touchpoint.WeChatQRCode
	var expires sql.NullTime
	err := row.Scan(&c.ID, &c.AccountID, &c.TouchpointID, &c.Scene, &c.Ticket, &c.URL, &c.ImageURL, &c.Permanent, &expires, &c.CreatedAt)
	c.ExpiresAt = nullTime(expires)
	c.CreatedAt = c.CreatedAt.UTC()
	return c, err
}

// CreateWeChatQRCode stores a code made on WeChat. A second permanent code of an account and scene is a
// Conflict.
func (db *DB) CreateWeChatQRCode(ctx context.Context, c touchpoint.WeChatQRCode) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO wechat_qr_codes (`+wechatQRColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		c.ID, c.AccountID, c.TouchpointID, c.Scene, c.Ticket, c.URL, c.ImageURL, c.Permanent, nullable(c.ExpiresAt), c.CreatedAt.UTC())
	return db.wrap("store.create_wechat_qr_code", err)
}

// PermanentWeChatQRCodes lists the permanent codes of a touchpoint on an account, newest first.
func (db *DB) PermanentWeChatQRCodes(ctx context.Context, accountID, touchpointID string) ([]touchpoint.WeChatQRCode, error) {
	return queryAll(ctx, db, "store.permanent_wechat_qr_codes", scanWeChatQRCode, `SELECT `+wechatQRColumns+` FROM wechat_qr_codes
		WHERE account_id = $1 AND touchpoint_id = $2 AND permanent ORDER BY id DESC`, accountID, touchpointID)
}

// WeChatQRCodes lists a touchpoint's codes, newest first.
func (db *DB) WeChatQRCodes(ctx context.Context, touchpointID string) ([]touchpoint.WeChatQRCode, error) {
	return queryAll(ctx, db, "store.wechat_qr_codes", scanWeChatQRCode, `SELECT `+wechatQRColumns+` FROM wechat_qr_codes
		WHERE touchpoint_id = $1 ORDER BY id DESC`, touchpointID)
}
