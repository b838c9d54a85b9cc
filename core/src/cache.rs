//! In-process caches of what nearly every request reads and what rarely changes: API keys,
//! tenants, and the configuration the events pipeline runs with (a tenant's point rules and
//! tier ladder).
//!
//! ## Freshness
//! - A change made through this process forgets the entry **after** its transaction commits,
//!   so the next request of this process reads the change.
//! - A load that raced with such a change never stores what it read: each map has a
//!   generation, bumped by every `forget`, and a load stores its value only when the
//!   generation is the one it started with.
//! - A change made by another process (a second replica on the same PostgreSQL) is seen
//!   within `cache.ttl_ms`: every entry is dropped that long after it was loaded. A revoked
//!   key therefore works on other replicas for at most that long.
//!
//! ## Bounds
//! Each map holds at most `cache.entries_max` entries; when a load finds it full, expired
//! entries go first and, if none had expired, the whole map (a reload costs one query each).
//! `cache.ttl_ms = 0` turns caching off.

use crate::auth::KeyRecord;
use crate::events::pipeline::PipelineConfig;
use crate::ids::{ApiKeyId, TenantId};
use crate::tenants::Tenant;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The caches of one server process, held by [`Db`](crate::db::Db).
#[derive(Debug)]
pub struct Caches {
    /// API keys by id: what authentication compares the presented secret with.
    pub(crate) keys: TtlMap<ApiKeyId, KeyRecord>,
    pub(crate) tenants: TtlMap<TenantId, Tenant>,
    /// What the events pipeline runs with: enabled point rules in order, the tier ladder.
    pub(crate) pipeline: TtlMap<TenantId, Arc<PipelineConfig>>,
}

impl Caches {
    pub fn new(settings: &CacheSettings) -> Self {
        Self {
            keys: TtlMap::new(settings),
            tenants: TtlMap::new(settings),
            pipeline: TtlMap::new(settings),
        }
    }

    /// After a change to a tenant, its plugin bindings or its tier ladder has committed.
    pub fn forget_tenant(&self, tenant: TenantId) {
        self.tenants.forget(&tenant);
        self.pipeline.forget(&tenant);
    }
}

/// `[cache]`: how long entries live and how many one map holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CacheSettings {
    /// Milliseconds an entry lives: the longest a change made by another replica goes unseen.
    /// 0 turns the caches off.
    pub ttl_ms: u64,
    /// Most entries one map (keys, tenants, pipeline configurations) holds.
    pub entries_max: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            ttl_ms: 1_000,
            entries_max: 10_000,
        }
    }
}

struct Inner<K, V> {
    generation: u64,
    entries: HashMap<K, (Instant, V)>,
}

/// A map whose entries expire `ttl` after they were stored.
pub struct TtlMap<K, V> {
    ttl: Duration,
    entries_max: usize,
    inner: Mutex<Inner<K, V>>,
}

impl<K, V> std::fmt::Debug for TtlMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlMap")
            .field("ttl", &self.ttl)
            .field("entries_max", &self.entries_max)
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> TtlMap<K, V> {
    pub fn new(settings: &CacheSettings) -> Self {
        Self {
            ttl: Duration::from_millis(settings.ttl_ms),
            entries_max: settings.entries_max,
            inner: Mutex::new(Inner {
                generation: 0,
                entries: HashMap::new(),
            }),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.entries_max > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `key`, loading it with `load` when it is absent or expired.
    pub async fn get_or_load<E, F>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if !self.enabled() {
            return load.await;
        }
        let started = {
            let inner = self.lock();
            if let Some((at, v)) = inner.entries.get(key)
                && at.elapsed() < self.ttl
            {
                return Ok(v.clone());
            }
            inner.generation
        };
        let value = load.await?;
        let mut inner = self.lock();
        if inner.generation == started {
            if inner.entries.len() >= self.entries_max && !inner.entries.contains_key(key) {
                let ttl = self.ttl;
                inner.entries.retain(|_, (at, _)| at.elapsed() < ttl);
                if inner.entries.len() >= self.entries_max {
                    inner.entries.clear();
                }
            }
            inner
                .entries
                .insert(key.clone(), (Instant::now(), value.clone()));
        }
        Ok(value)
    }

    /// Drops `key`, and keeps loads that started before now from storing what they read.
    pub fn forget(&self, key: &K) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.remove(key);
    }

    /// How many entries are stored (expired ones included until they are replaced).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(ttl_ms: u64, entries_max: usize) -> CacheSettings {
        CacheSettings {
            ttl_ms,
            entries_max,
        }
    }

    async fn load(map: &TtlMap<u32, u32>, key: u32, value: u32) -> u32 {
        map.get_or_load(&key, async { Ok::<_, ()>(value) })
            .await
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_stored_value_is_served_until_forgotten() {
        let map = TtlMap::new(&settings(60_000, 10));
        assert_eq!(load(&map, 1, 10).await, 10);
        assert_eq!(load(&map, 1, 11).await, 10, "served from the cache");
        map.forget(&1);
        assert_eq!(load(&map, 1, 12).await, 12, "reloaded after forget");
    }

    #[tokio::test]
    async fn ttl_zero_turns_the_cache_off() {
        let map = TtlMap::new(&settings(0, 10));
        assert_eq!(load(&map, 1, 10).await, 10);
        assert_eq!(load(&map, 1, 11).await, 11);
        assert!(map.is_empty());
    }

    #[tokio::test]
    async fn a_load_that_raced_with_forget_is_not_stored() {
        let map = TtlMap::new(&settings(60_000, 10));
        let stale = map
            .get_or_load(&1, async {
                // A change commits and forgets the key while this load reads the old value.
                map.forget(&1);
                Ok::<_, ()>(10)
            })
            .await;
        assert_eq!(stale, Ok(10), "the caller still gets what it read");
        assert_eq!(load(&map, 1, 11).await, 11, "but the next load reads again");
    }

    #[tokio::test]
    async fn a_full_map_never_grows_past_entries_max() {
        let map = TtlMap::new(&settings(60_000, 3));
        for k in 0..10 {
            load(&map, k, k).await;
            assert!(map.len() <= 3, "{} entries after key {k}", map.len());
        }
        assert_eq!(load(&map, 9, 99).await, 9, "the newest entry survived");
    }

    #[tokio::test]
    async fn an_error_is_not_stored() {
        let map: TtlMap<u32, u32> = TtlMap::new(&settings(60_000, 3));
        let err = map.get_or_load(&1, async { Err::<u32, _>("down") }).await;
        assert_eq!(err, Err("down"));
        assert_eq!(load(&map, 1, 5).await, 5);
    }
}
