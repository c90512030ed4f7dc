//! Data at rest: the shop's and the sandbox's data folders are private to the user who runs them,
//! their databases and WAL files too, whatever the umask; an older, looser folder is tightened.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;

use haitao_files::mode;
use haitao_shop::ShopConfig;

#[tokio::test]
async fn data_folders_and_databases_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let (shop_dir, sandbox_dir) = (tmp.path().join("shop"), tmp.path().join("sandbox"));
    // A folder an older Haitao left readable by everyone, with a database in it.
    std::fs::create_dir(&sandbox_dir).unwrap();
    std::fs::set_permissions(&sandbox_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sc = haitao_alipay_sandbox::Config::new(Some(sandbox_dir.clone()), "127.0.0.1:0".parse().unwrap());
    let sandbox = haitao_alipay_sandbox::start(sc).await.unwrap();
    let cfg =
        ShopConfig::local(Some(shop_dir.clone()), "127.0.0.1:0".parse().unwrap(), sandbox.base_url().clone());
    let shop = haitao_shop::start(cfg).await.unwrap();
    for (dir, db) in [(&shop_dir, "shop.sqlite3"), (&sandbox_dir, "sandbox.sqlite3")] {
        assert_eq!(mode(dir).unwrap(), 0o700, "{}", dir.display());
        for name in [db.to_owned(), format!("{db}-wal"), format!("{db}-shm")] {
            let f = dir.join(&name);
            if f.exists() {
                assert_eq!(mode(&f).unwrap(), 0o600, "{name}");
            }
        }
        assert!(dir.join(format!("{db}-wal")).exists(), "the WAL is checked too");
    }
    shop.stop().await;
    sandbox.stop().await;
    // Loosened by hand, tightened again at the next start.
    std::fs::set_permissions(shop_dir.join("shop.sqlite3"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let sc = haitao_alipay_sandbox::Config::new(Some(sandbox_dir.clone()), "127.0.0.1:0".parse().unwrap());
    let sandbox = haitao_alipay_sandbox::start(sc).await.unwrap();
    let cfg =
        ShopConfig::local(Some(shop_dir.clone()), "127.0.0.1:0".parse().unwrap(), sandbox.base_url().clone());
    let shop = haitao_shop::start(cfg).await.unwrap();
    assert_eq!(mode(&shop_dir.join("shop.sqlite3")).unwrap(), 0o600);
    shop.stop().await;
    sandbox.stop().await;
}
