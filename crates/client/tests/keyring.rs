//! The refresh token in a real Secret Service (GNOME Keyring over D-Bus).
//!
//! These tests need a session bus with an unlocked Secret Service, so they are `#[ignore]`d in a
//! plain `cargo test` and run by `scripts/test.sh` inside `dbus-run-session` after starting
//! `gnome-keyring-daemon --unlock`, one test thread (the keyring is shared state):
//!
//! ```text
//! dbus-run-session -- sh -c 'echo -n pass | gnome-keyring-daemon --components=secrets --daemonize --unlock;
//!   cargo test -p haitao-client --test keyring -- --ignored --test-threads=1'
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::world;
use haitao_client::{KeyringStore, SecretStore};
use haitao_shop_api::secret::SecretString;

fn unique(prefix: &str) -> String {
    use haitao_alipay::ids::IdGen;
    haitao_alipay::ids::RandomIds.next_id(&format!("{prefix}-{}-", std::process::id()))
}

#[test]
#[ignore = "needs an unlocked Secret Service; scripts/test.sh runs it under dbus-run-session"]
fn secret_service_round_trip_overwrite_delete() {
    let service = unique("com.haitao.test:http://127.0.0.1:1");
    let store = KeyringStore::connect(service.clone()).expect("connect to the Secret Service");
    assert_eq!(store.kind(), "Secret Service");
    assert_eq!(store.get("refresh").unwrap(), None);

    // Non-ASCII and long values survive unchanged.
    let v1 = SecretString::new(format!("rt_令牌_{}", "x".repeat(2048)));
    store.set("refresh", &v1).unwrap();
    assert_eq!(store.get("refresh").unwrap(), Some(v1));

    let v2 = SecretString::new("rt_second");
    store.set("refresh", &v2).unwrap();
    // A second connection (a restarted app) sees the same item: it is in the persistent collection.
    let again = KeyringStore::connect(service.clone()).unwrap();
    assert_eq!(again.get("refresh").unwrap(), Some(v2));

    // Entries are namespaced by shop origin: another shop sees nothing.
    let other = KeyringStore::connect(unique("com.haitao.test:https://shop.example")).unwrap();
    assert_eq!(other.get("refresh").unwrap(), None);

    store.delete("refresh").unwrap();
    assert_eq!(again.get("refresh").unwrap(), None);
    // Deleting what is not there is not an error.
    store.delete("refresh").unwrap();
}

#[tokio::test]
#[ignore = "needs an unlocked Secret Service; scripts/test.sh runs it under dbus-run-session"]
async fn remembered_session_survives_a_restart_and_sign_out_forgets_it() {
    let w = world().await;
    let service = unique(&format!("com.haitao.test:{}", w.shop.base_url()));
    let keyring: Arc<dyn SecretStore> = Arc::new(KeyringStore::connect(service.clone()).unwrap());

    let c = w.client_with(keyring.clone());
    let s = c.register("13900000101", "haitao2026", true).await.unwrap();
    assert!(s.signed_in && s.remembered);
    // The refresh token is in the keyring, and nowhere in the cache file.
    let token = keyring.get("refresh-token").unwrap().expect("refresh token stored");
    let cache_bytes = std::fs::read(w.dir.path().join("cache.sqlite3")).unwrap();
    assert!(
        !cache_bytes.windows(token.expose().len()).any(|win| win == token.expose().as_bytes()),
        "the refresh token must never reach SQLite"
    );
    drop(c);

    // "Restart": a new client and a new keyring connection restore the session.
    let keyring2: Arc<dyn SecretStore> = Arc::new(KeyringStore::connect(service.clone()).unwrap());
    let c2 = w.client_with(keyring2.clone());
    let restored = c2.restore().await;
    assert!(restored.signed_in, "{restored:?}");
    assert!(restored.problem.is_none(), "{restored:?}");
    assert_eq!(restored.account.as_ref().map(|a| a.phone_masked.as_str()), Some("139****0101"));
    // Refresh tokens rotate: the stored one changed on restore.
    let rotated = keyring2.get("refresh-token").unwrap().expect("rotated token stored");
    assert_ne!(rotated, token);

    c2.sign_out(false).await.unwrap();
    assert_eq!(keyring2.get("refresh-token").unwrap(), None);
    let c3 = w.client_with(keyring2);
    assert!(!c3.restore().await.signed_in);
}
