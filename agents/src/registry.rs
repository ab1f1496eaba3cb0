//! Agents by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::agent::Agent;

/// The agents a gateway can route to, keyed by `spec.agent`.
#[derive(Clone, Default)]
pub struct AgentRegistry {
    agents: BTreeMap<String, Arc<dyn Agent>>,
}

impl AgentRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an agent under its name, replacing any previous one.
    pub fn register(&mut self, agent: Arc<dyn Agent>) {
        self.agents.insert(agent.name().to_owned(), agent);
    }

    /// The agent for `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Agent>> {
        self.agents.get(name).cloned()
    }

    /// Registered agent names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.agents.keys().cloned().collect()
    }

    /// Every registered agent.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Agent>> {
        self.agents.values()
    }
}
