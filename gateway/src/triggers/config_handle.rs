//! The configuration in force, shared by everything that reads it and replaced as a whole when
//! the config files change (a reload never leaves a reader with half an old, half a new config).

use std::sync::Arc;

use bosun_gateway_config::LoadedConfig;
use tokio::sync::watch;

/// A cheaply cloneable handle on a value that is replaced as a whole on reload (none when the
/// gateway was started without it).
pub struct Live<T> {
    tx: Arc<watch::Sender<Option<Arc<T>>>>,
}

/// The Prow configuration (`config.yaml` + job config) in force.
pub type ConfigHandle = Live<LoadedConfig>;

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("loaded", &self.tx.borrow().is_some())
            .finish()
    }
}

impl<T> Live<T> {
    /// A handle holding `value`.
    pub fn new(value: Option<T>) -> Self {
        let (tx, _) = watch::channel(value.map(Arc::new));
        Self { tx: Arc::new(tx) }
    }

    /// The value in force now.
    pub fn current(&self) -> Option<Arc<T>> {
        self.tx.borrow().clone()
    }

    /// Puts a new value in force; subscribers are woken.
    pub fn replace(&self, value: T) {
        self.tx.send_replace(Some(Arc::new(value)));
    }

    /// A receiver woken on every [`Live::replace`].
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<T>>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replace_wakes_subscribers_and_changes_current() {
        let handle = ConfigHandle::new(None);
        assert!(handle.current().is_none());
        let mut rx = handle.subscribe();
        let loaded = bosun_gateway_config::load_from_memory(
            (
                std::path::Path::new("config.yaml"),
                "prowjob_namespace: ci\n",
            ),
            &[],
        )
        .expect("config loads");
        handle.replace(loaded);
        rx.changed().await.expect("sender alive");
        let now = handle.current().expect("config in force");
        assert_eq!(now.prow().prowjob_namespace, "ci");
    }
}
