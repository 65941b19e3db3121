//! Cleaning up workers' dependency environments (`docs/worker.md`, "Dependency
//! environments"): the process backend's shared store in `<data_dir>/envs`
//! ([`rafiki_worker::envs`]), the docker and swarm backends' per-owner volumes, and the per-service
//! `venvs` folders that versions before the shared store left in `<data_dir>/services/<id>/`.
//! Called at admin start-up and by `rafiki-admin gc`; workers evict over the bound themselves
//! after each build.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rafiki_worker::envs::{bound_of_gigabytes as max_bytes, EnvStore, Removed};
use uuid::Uuid;

use crate::backend::docker;
use crate::config::{BackendKind, GcSettings};

/// The process backend's store of environments in a data directory.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("envs")
}

/// What a gc removed.
#[derive(Debug, Default)]
pub struct Collected {
    /// From the process backend's store.
    pub store: Removed,
    /// Docker volumes no container used.
    pub volumes: Vec<String>,
}

/// `rafiki-admin gc`: the process backend's store (half-built and taken-out environments,
/// stale ones, least-recently-used ones over the bound; none that a live service uses), and
/// with the docker backend the project's environment volumes that no container uses.
pub async fn collect(settings: &GcSettings) -> anyhow::Result<Collected> {
    let store = store_dir(&settings.data_dir);
    let bound = max_bytes(settings.env_cache_max_gb);
    let mut collected = Collected {
        store: tokio::task::spawn_blocking(move || EnvStore::new(store).gc(bound)).await??,
        ..Collected::default()
    };
    // A swarm's volumes are on its nodes: those of the admin's engine are collected here.
    if matches!(settings.backend, BackendKind::Docker | BackendKind::Swarm) {
        let engine = docker::connect_engine().await?;
        collected.volumes =
            docker::remove_unused_env_volumes(&engine, &settings.docker_project).await?;
    }
    Ok(collected)
}

/// At start-up (process backend): gc of the shared store, and removal of the `venvs` folders
/// of services that are not live, which older versions built per service. Failures are
/// logged: they cost disk space, not correctness.
pub async fn clean_at_start_up(data_dir: &Path, gb: f64, live: HashSet<Uuid>) {
    let store = store_dir(data_dir);
    let services = data_dir.join("services");
    let bound = max_bytes(gb);
    let cleaned = tokio::task::spawn_blocking(move || {
        let removed = EnvStore::new(store).gc(bound);
        let legacy = remove_legacy_venvs(&services, &live);
        (removed, legacy)
    })
    .await;
    match cleaned {
        Ok((Ok(removed), legacy)) => {
            if removed != Removed::default() || legacy > 0 {
                tracing::info!(
                    evicted = ?removed.evicted,
                    leftovers = removed.leftovers,
                    bytes = removed.bytes,
                    legacy_per_service_venvs = legacy,
                    "cleaned up dependency environments"
                );
            }
        }
        Ok((Err(e), _)) => tracing::warn!("cannot clean up dependency environments: {e}"),
        Err(e) => tracing::warn!("cannot clean up dependency environments: {e}"),
    }
}

/// Removes `<services>/<id>/venvs` of every service not in `live`; returns how many.
fn remove_legacy_venvs(services: &Path, live: &HashSet<Uuid>) -> usize {
    let Ok(entries) = std::fs::read_dir(services) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.filter_map(Result::ok) {
        let is_live = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<Uuid>().ok())
            .is_none_or(|id| live.contains(&id));
        let venvs = entry.path().join("venvs");
        if is_live || !venvs.is_dir() {
            continue;
        }
        match std::fs::remove_dir_all(&venvs) {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!(path = %venvs.display(), "cannot remove: {e}"),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_venvs_of_services_that_are_not_live_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (live, gone) = (Uuid::new_v4(), Uuid::new_v4());
        for id in [live, gone] {
            let venv = dir.path().join(id.to_string()).join("venvs/abc/bin");
            std::fs::create_dir_all(&venv).unwrap();
            std::fs::write(dir.path().join(id.to_string()).join("service.log"), "").unwrap();
        }
        let removed = remove_legacy_venvs(dir.path(), &HashSet::from([live]));
        assert_eq!(removed, 1);
        assert!(dir.path().join(live.to_string()).join("venvs").is_dir());
        assert!(!dir.path().join(gone.to_string()).join("venvs").exists());
        assert!(dir
            .path()
            .join(gone.to_string())
            .join("service.log")
            .is_file());
    }
}
