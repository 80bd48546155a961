-- WeChat official accounts connected to Hearth, and the parametric QR codes made for touchpoints on them.

-- The app secret, the callback token and the EncodingAESKey are sealed with the master key (AES-256-GCM),
-- never stored in the clear; encoding_aes_key is NULL for an account in plain-text mode. Its events are
-- recorded under source_id, a source of kind wechat made with the account. slug is the {account} of the
-- callback URL /wechat/{account}. api_base_url is empty for WeChat's own API.
CREATE TABLE wechat_accounts (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	slug TEXT NOT NULL UNIQUE,
	app_id TEXT NOT NULL UNIQUE,
	app_secret BLOB NOT NULL,
	token BLOB NOT NULL,
	encoding_aes_key BLOB,
	source_id TEXT NOT NULL REFERENCES sources (id),
	api_base_url TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);

-- Parametric QR codes: the scene is a touchpoint's token. A permanent code is made once per account and
-- scene (an account may have only 100,000), so the ticket is kept and handed out again.
CREATE TABLE wechat_qr_codes (
	id TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES wechat_accounts (id),
	touchpoint_id TEXT NOT NULL REFERENCES touchpoints (id),
	scene TEXT NOT NULL,
	ticket TEXT NOT NULL,
	url TEXT NOT NULL,
	image_url TEXT NOT NULL,
	permanent BOOLEAN NOT NULL,
	expires_at TIMESTAMP,
	created_at TIMESTAMP NOT NULL
);
CREATE INDEX wechat_qr_codes_touchpoint ON wechat_qr_codes (touchpoint_id, id);
CREATE UNIQUE INDEX wechat_qr_codes_permanent ON wechat_qr_codes (account_id, scene) WHERE permanent;
