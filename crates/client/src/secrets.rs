//! Where the refresh token lives: the OS keyring (`haitao-keyring`: the Secret Service on Linux,
//! the Credential Manager on Windows, the Keychain on macOS), namespaced by the app identifier and the shop's origin. The access token never leaves
//! memory. When the keyring is unavailable or locked the caller gets a typed error that says what to
//! do; there is no plaintext fallback.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use haitao_shop_api::secret::SecretString;
use parking_lot::Mutex;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the system keyring is not available ({0}). {hint}; Haitao does not keep your session in plain files",
        hint = haitao_keyring::UNAVAILABLE_HINT
    )]
    Unavailable(String),
    #[error(
        "the system keyring is locked ({0}); unlock it (for example by logging in to the desktop) and try again"
    )]
    Locked(String),
    #[error("the system keyring failed: {0}")]
    Other(String),
}

/// Secret storage. Implementations must be persistent or say they are not.
pub trait SecretStore: Send + Sync + fmt::Debug {
    fn get(&self, key: &str) -> Result<Option<SecretString>, SecretError>;
    fn set(&self, key: &str, value: &SecretString) -> Result<(), SecretError>;
    fn delete(&self, key: &str) -> Result<(), SecretError>;
    /// A short description for diagnostics ("Secret Service", "macOS Keychain", "memory").
    fn kind(&self) -> &'static str;
}

/// An in-memory store for tests (and nothing else).
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<HashMap<String, SecretString>>>,
}

impl SecretStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
        Ok(self.inner.lock().get(key).cloned())
    }

    fn set(&self, key: &str, value: &SecretString) -> Result<(), SecretError> {
        self.inner.lock().insert(key.to_owned(), value.clone());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), SecretError> {
        self.inner.lock().remove(key);
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

/// A store that is never available: what the app uses when the keyring cannot be reached.
#[derive(Debug, Clone)]
pub struct UnavailableStore(pub String);

impl SecretStore for UnavailableStore {
    fn get(&self, _: &str) -> Result<Option<SecretString>, SecretError> {
        Err(SecretError::Unavailable(self.0.clone()))
    }

    fn set(&self, _: &str, _: &SecretString) -> Result<(), SecretError> {
        Err(SecretError::Unavailable(self.0.clone()))
    }

    fn delete(&self, _: &str) -> Result<(), SecretError> {
        Err(SecretError::Unavailable(self.0.clone()))
    }

    fn kind(&self) -> &'static str {
        "unavailable"
    }
}

/// The OS keyring (see `haitao-keyring` for the store of each OS).
#[derive(Debug, Clone)]
pub struct KeyringStore {
    service: String,
}

fn map_err(e: keyring_core::Error) -> SecretError {
    match e {
        keyring_core::Error::NoStorageAccess(inner) => SecretError::Locked(inner.to_string()),
        keyring_core::Error::PlatformFailure(inner) => SecretError::Unavailable(inner.to_string()),
        keyring_core::Error::NoDefaultStore => SecretError::Unavailable("no keyring store configured".into()),
        other => SecretError::Other(other.to_string()),
    }
}

impl KeyringStore {
    /// Connects to the platform keyring and namespaces entries under `service`
    /// (`<app identifier>:<shop origin>`).
    pub fn connect(service: impl Into<String>) -> Result<Self, SecretError> {
        haitao_keyring::install().map_err(|e| SecretError::Unavailable(e.0))?;
        Ok(KeyringStore { service: service.into() })
    }

    fn entry(&self, key: &str) -> Result<keyring_core::Entry, SecretError> {
        keyring_core::Entry::new(&self.service, key).map_err(map_err)
    }
}

impl SecretStore for KeyringStore {
    fn get(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
        match self.entry(key)?.get_password() {
            Ok(v) => Ok(Some(SecretString::new(v))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    fn set(&self, key: &str, value: &SecretString) -> Result<(), SecretError> {
        self.entry(key)?.set_password(value.expose()).map_err(map_err)
    }

    fn delete(&self, key: &str) -> Result<(), SecretError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    fn kind(&self) -> &'static str {
        haitao_keyring::KIND
    }
}

/// The keyring namespace for an app and a shop: `com.haitao.desktop:http://127.0.0.1:8080`.
pub fn namespace(app_identifier: &str, shop_origin: &str) -> String {
    format!("{app_identifier}:{shop_origin}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_round_trip() {
        let s = MemoryStore::default();
        assert_eq!(s.get("k"), Ok(None));
        s.set("k", &SecretString::new("v")).unwrap();
        assert_eq!(s.get("k").unwrap().map(|v| v.expose().to_owned()), Some("v".into()));
        s.delete("k").unwrap();
        assert_eq!(s.get("k"), Ok(None));
        assert!(matches!(UnavailableStore("x".into()).get("k"), Err(SecretError::Unavailable(_))));
    }
}
