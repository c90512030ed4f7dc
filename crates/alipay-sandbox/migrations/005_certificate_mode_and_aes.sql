-- Apps in public-key certificate mode keep the application certificate the sandbox issued them
-- (PEM; its serial number is computed from it); apps with content encryption keep their AES key
-- (base64). Both NULL: an app in public-key mode without encryption, as before.
ALTER TABLE apps ADD COLUMN app_cert TEXT;
ALTER TABLE apps ADD COLUMN aes_key TEXT;

-- The sandbox's "Alipay public-key certificates" for apps in certificate mode: every one ever
-- issued stays downloadable by its SN (alipay.open.app.alipaycert.download); the newest signs.
CREATE TABLE alipay_certs (
    sn TEXT PRIMARY KEY,
    pem TEXT NOT NULL,
    key_pkcs8 TEXT NOT NULL,
    created_at TEXT NOT NULL
);
