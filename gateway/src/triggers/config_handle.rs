//! The configuration in force, shared by everything that reads it and replaced as a whole when
//! the config files change (a reload never leaves a reader with half an old, half a new config).

use std::sync::Arc;

use bosun_gateway_config::LoadedConfig;
use tokio::sync::watch;

/// A cheaply cloneable handle on the current configuration (none when the gateway was started
/// without `--config-path`).
#[derive(Clone)]
pub struct ConfigHandle {
    tx: Arc<watch::Sender<Option<Arc<LoadedConfig>>>>,
}

impl std::fmt::Debug for ConfigHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigHandle")
            .field("loaded", &self.tx.borrow().is_some())
            .finish()
    }
}

impl ConfigHandle {
    /// A handle holding `config`.
    pub fn new(config: Option<LoadedConfig>) -> Self {
        let (tx, _) = watch::channel(config.map(Arc::new));
        Self { tx: Arc::new(tx) }
    }

    /// The configuration in force now.
    pub fn current(&self) -> Option<Arc<LoadedConfig>> {
        self.tx.borrow().clone()
    }

    /// Puts a new configuration in force; subscribers are woken.
    pub fn replace(&self, config: LoadedConfig) {
        self.tx.send_replace(Some(Arc::new(config)));
    }

    /// A receiver woken on every [`ConfigHandle::replace`].
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<LoadedConfig>>> {
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
