//! Build ids: snowflake ids (as Prow vends without a tot server), forced strictly increasing
//! within a process and seeded above the highest id already stored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The epoch bwmarrin/snowflake uses (ms since the Unix epoch).
const SNOWFLAKE_EPOCH_MS: u64 = 1_288_834_974_657;
const NODE: u64 = 1;

/// Vends unique, increasing build ids.
#[derive(Debug, Default)]
pub struct BuildIdVendor {
    last: AtomicU64,
}

impl BuildIdVendor {
    /// A vendor that never returns an id at or below `floor`.
    pub fn with_floor(floor: u64) -> Self {
        Self {
            last: AtomicU64::new(floor),
        }
    }

    /// Raises the floor (ids already in use).
    pub fn observe(&self, id: &str) {
        if let Ok(n) = id.parse::<u64>() {
            self.last.fetch_max(n, Ordering::SeqCst);
        }
    }

    /// The next id, as Prow writes it (decimal).
    pub fn next(&self) -> String {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let snowflake = (now_ms.saturating_sub(SNOWFLAKE_EPOCH_MS) << 22) | (NODE << 12);
        let mut last = self.last.load(Ordering::SeqCst);
        loop {
            let candidate = snowflake.max(last + 1);
            match self
                .last
                .compare_exchange(last, candidate, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return candidate.to_string(),
                Err(actual) => last = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_respect_the_floor() {
        let v = BuildIdVendor::default();
        let mut prev = 0u64;
        for _ in 0..10_000 {
            let id: u64 = v.next().parse().expect("decimal");
            assert!(id > prev);
            prev = id;
        }
        let v = BuildIdVendor::with_floor(u64::MAX / 2);
        assert!(v.next().parse::<u64>().expect("decimal") > u64::MAX / 2);
    }

    #[test]
    fn looks_like_a_snowflake() {
        let id = BuildIdVendor::default().next();
        assert_eq!(id.len(), 19, "{id}");
    }
}
