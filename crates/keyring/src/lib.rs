//! The OS keyring Haitao keeps its secrets in (the shopper's refresh token, a deployed shop's
//! merchant key), chosen by the target it is built for:
//!
//! | OS      | store                                   | crate                               |
//! |---------|-----------------------------------------|-------------------------------------|
//! | Linux   | the Secret Service (GNOME Keyring, KWallet) over D-Bus, persistent default collection | `dbus-secret-service-keyring-store` |
//! | Windows | the Credential Manager (generic credentials, persisted per user) | `windows-native-keyring-store` |
//! | macOS   | the login Keychain                      | `apple-native-keyring-store` (`keychain`) |
//!
//! Anywhere else there is no store, and [`install`] says so: Haitao never falls back to a plain
//! file.

use std::fmt;

/// What the store is called where it is shown to people (Settings, diagnostics).
#[cfg(target_os = "linux")]
pub const KIND: &str = "Secret Service";
#[cfg(target_os = "windows")]
pub const KIND: &str = "Windows Credential Manager";
#[cfg(target_os = "macos")]
pub const KIND: &str = "macOS Keychain";
#[cfg(not(any(target_os = "linux", target_os = "windows", target_os = "macos")))]
pub const KIND: &str = "none";

/// What a person can do when the store cannot be reached.
#[cfg(target_os = "linux")]
pub const UNAVAILABLE_HINT: &str = "Install and start GNOME Keyring or KWallet (the Secret Service)";
#[cfg(target_os = "windows")]
pub const UNAVAILABLE_HINT: &str = "Check that the Credential Manager service (VaultSvc) is running";
#[cfg(target_os = "macos")]
pub const UNAVAILABLE_HINT: &str = "Unlock the login keychain in Keychain Access";
#[cfg(not(any(target_os = "linux", target_os = "windows", target_os = "macos")))]
pub const UNAVAILABLE_HINT: &str = "This operating system has no keyring Haitao can use";

/// The store could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {KIND} is unavailable: {}", self.0)
    }
}

impl std::error::Error for Unavailable {}

/// Makes the OS keyring the default store of `keyring_core`, for the entries created after.
pub fn install() -> Result<(), Unavailable> {
    #[cfg(target_os = "linux")]
    {
        let store =
            dbus_secret_service_keyring_store::Store::new().map_err(|e| Unavailable(e.to_string()))?;
        keyring_core::set_default_store(store);
        Ok(())
    }
    #[cfg(target_os = "windows")]
    {
        let store = windows_native_keyring_store::Store::new().map_err(|e| Unavailable(e.to_string()))?;
        keyring_core::set_default_store(store);
        Ok(())
    }
    #[cfg(target_os = "macos")]
    {
        let store =
            apple_native_keyring_store::keychain::Store::new().map_err(|e| Unavailable(e.to_string()))?;
        keyring_core::set_default_store(store);
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", target_os = "windows", target_os = "macos")))]
    {
        Err(Unavailable(format!("no keyring store is built for {}", std::env::consts::OS)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_is_named_for_this_os() {
        let expected = match std::env::consts::OS {
            "linux" => "Secret Service",
            "windows" => "Windows Credential Manager",
            "macos" => "macOS Keychain",
            _ => "none",
        };
        assert_eq!(KIND, expected);
        let e = Unavailable("no session bus".into());
        assert_eq!(e.to_string(), format!("the {expected} is unavailable: no session bus"));
    }
}
