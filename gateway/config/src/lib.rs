//! `bosun-gateway-config`: Prow's `config.yaml` and job configuration, loaded the way Prow
//! loads them (reference `prow-prowjob-api.md` §3).
//!
//! Start at [`load`]: it reads the config file and the job config tree, applies Prow's
//! defaults in Prow's order, validates everything and returns a [`LoadedConfig`], or every
//! [`Problem`] it found (never just the first) in a [`ConfigErrors`]. Jobs become ProwJobs with
//! the builders in [`spec`] ([`presubmit_spec`], [`periodic_spec`], ..., [`new_prowjob`]).
//!
//! Strictness follows Prow's `LoadStrict`: unknown keys inside jobs, presets and the modelled
//! controller blocks are errors; unknown top-level keys of `config.yaml` (tide,
//! branch-protection, ...) and unmodelled `deck` keys are accepted.

pub mod cron;
pub mod defaults;
pub mod error;
pub mod gerrit;
mod goish;
pub mod jobs;
mod load;
mod parse;
pub mod prow;
pub mod spec;
pub mod validate;

pub use defaults::{
    apply_decoration_default, apply_prowjob_default, default_rerun_command_for,
    default_trigger_for, entry_matches,
};
pub use error::{ConfigErrors, Location, LookupError, Problem};
pub use gerrit::{Gerrit, GerritOrgRepoConfig, GerritProject, GerritQueryFilter};
pub use jobs::{
    Brancher, ChangedFilesProvider, JobBase, JobConfig, LazyChangedFiles, Periodic, Postsubmit,
    Preset, Presubmit, RegexpChangeMatcher, Retry,
};
pub use load::{LoadedConfig, load, load_from_memory};
pub use prow::{BosunSettings, DEFAULT_TENANT_ID, ProwConfig};
pub use spec::{
    batch_spec, complete_primary_refs, new_prowjob, periodic_spec, postsubmit_spec, presubmit_spec,
};
