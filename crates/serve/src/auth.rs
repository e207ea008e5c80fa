//! HTTP basic auth against bcrypt hashes, as the exporter toolkit checks it: an unknown user is
//! checked against a fixed hash (so timing does not tell which users exist), one bcrypt runs
//! at a time, and results (failures too) are cached, so repeated requests cost a hash lookup
//! and a flood of wrong passwords costs at most one core.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

use parking_lot::Mutex;

/// Cached results kept; when full, a tenth (plus one) are dropped, picked by the map's
/// per-process random order.
const CACHE_SIZE: usize = 100;

pub struct BasicAuth {
    cache: Mutex<HashMap<(u64, u64), bool>>,
    /// Two independently keyed hashes of (user, stored hash, password): the password itself
    /// is never kept.
    keys: (RandomState, RandomState),
    bcrypt: std::sync::Mutex<()>,
}

impl Default for BasicAuth {
    fn default() -> Self {
        BasicAuth {
            cache: Mutex::new(HashMap::new()),
            keys: (RandomState::new(), RandomState::new()),
            bcrypt: std::sync::Mutex::new(()),
        }
    }
}

fn fake_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| bcrypt::hash("fakepassword", 10).unwrap_or_default())
}

impl BasicAuth {
    fn key(&self, user: &str, hash: &str, password: &str) -> (u64, u64) {
        let k = |s: &RandomState| s.hash_one((user, hash, password));
        (k(&self.keys.0), k(&self.keys.1))
    }

    /// The cached answer for `user:password`, if there is one: no bcrypt, so callers on an
    /// async worker ask this first and go to a blocking thread for [`BasicAuth::check`] only
    /// on a miss.
    pub fn cached(
        &self,
        users: &std::collections::BTreeMap<String, String>,
        user: &str,
        password: &str,
    ) -> Option<bool> {
        let (hash, known) = match users.get(user) {
            Some(h) => (h.as_str(), true),
            None => (fake_hash(), false),
        };
        let key = self.key(user, hash, password);
        self.cache.lock().get(&key).map(|&ok| ok && known)
    }

    /// Whether `user:password` matches `users` (user to bcrypt hash). Blocking (bcrypt takes
    /// tens of milliseconds on a miss): call it off the async workers.
    pub fn check(
        &self,
        users: &std::collections::BTreeMap<String, String>,
        user: &str,
        password: &str,
    ) -> bool {
        let (hash, known) = match users.get(user) {
            Some(h) => (h.as_str(), true),
            None => (fake_hash(), false),
        };
        let key = self.key(user, hash, password);
        if let Some(&ok) = self.cache.lock().get(&key) {
            return ok && known;
        }
        let ok = {
            let _one = self.bcrypt.lock();
            // bcrypt's verify compares the hashes in constant time.
            bcrypt::verify(password, hash).unwrap_or(false)
        };
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_SIZE {
            let drop: Vec<_> = cache.keys().take(cache.len() / 10 + 1).copied().collect();
            for k in drop {
                cache.remove(&k);
            }
        }
        cache.insert(key, ok);
        ok && known
    }
}

/// `user` and `password` of an `Authorization: Basic ...` header.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    use base64::Engine;
    let b64 = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_wrong_and_unknown() {
        let mut users = std::collections::BTreeMap::new();
        users.insert("alice".to_string(), bcrypt::hash("secret", 4).unwrap());
        let a = BasicAuth::default();
        assert!(a.check(&users, "alice", "secret"));
        assert!(a.check(&users, "alice", "secret"), "from the cache");
        assert!(!a.check(&users, "alice", "wrong"));
        assert!(
            !a.check(&users, "bob", "fakepassword"),
            "unknown users never pass"
        );
        assert!(
            !a.check(&users, "Alice", "secret"),
            "user names are case-sensitive"
        );
        for i in 0..300 {
            assert!(!a.check(&users, "alice", &format!("guess{i}")));
        }
        assert!(a.cache.lock().len() <= CACHE_SIZE);
        assert!(a.check(&users, "alice", "secret"));
    }

    #[test]
    fn basic_headers() {
        assert_eq!(
            parse_basic("Basic YWxpY2U6c2VjcmV0OjE="),
            Some(("alice".into(), "secret:1".into()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }
}
