//! The GPU inventory of the host services run on (`RAFIKI_GPUS`, e.g. `0,1`, or `auto` to ask
//! `nvidia-smi`): which device ids are free, which are held by services. Allocation happens
//! before a job's rows are written, release when a service stops, errors or is found gone; at
//! start-up the pool is rebuilt from the live services in the database.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// Not enough free GPUs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{asked} GPU(s) asked for, {} free{}", free.len(), describe(free))]
pub struct GpuShortage {
    /// How many were asked for.
    pub asked: usize,
    /// The free device ids.
    pub free: Vec<i32>,
}

fn describe(free: &[i32]) -> String {
    if free.is_empty() {
        String::new()
    } else {
        let ids: Vec<String> = free.iter().map(i32::to_string).collect();
        format!(" ({})", ids.join(", "))
    }
}

/// The inventory.
pub struct GpuPool {
    free: Mutex<BTreeSet<i32>>,
    all: BTreeSet<i32>,
}

impl GpuPool {
    /// A pool of these device ids, all free.
    pub fn new(devices: impl IntoIterator<Item = i32>) -> Self {
        let all: BTreeSet<i32> = devices.into_iter().collect();
        GpuPool {
            free: Mutex::new(all.clone()),
            all,
        }
    }

    fn free_set(&self) -> std::sync::MutexGuard<'_, BTreeSet<i32>> {
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `count` free devices, lowest ids first, or none at all.
    pub fn allocate(&self, count: usize) -> Result<Vec<i32>, GpuShortage> {
        let mut free = self.free_set();
        if free.len() < count {
            return Err(GpuShortage {
                asked: count,
                free: free.iter().copied().collect(),
            });
        }
        let taken: Vec<i32> = free.iter().copied().take(count).collect();
        for id in &taken {
            free.remove(id);
        }
        Ok(taken)
    }

    /// Returns devices to the pool (ids it does not know are ignored).
    pub fn release(&self, devices: &[i32]) {
        let mut free = self.free_set();
        free.extend(devices.iter().filter(|id| self.all.contains(id)));
    }

    /// Marks devices held by services that survived an admin restart.
    pub fn mark_used(&self, devices: &[i32]) {
        let mut free = self.free_set();
        for id in devices {
            free.remove(id);
        }
    }

    /// The free device ids.
    pub fn free(&self) -> Vec<i32> {
        self.free_set().iter().copied().collect()
    }
}

/// The GPUs `nvidia-smi` lists on this host; none where it is missing or fails.
pub fn discover() -> Vec<i32> {
    let listed = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=index", "--format=csv,noheader"])
        .stderr(std::process::Stdio::null())
        .output();
    match listed {
        Ok(out) if out.status.success() => parse_gpu_list(
            &String::from_utf8_lossy(&out.stdout)
                .lines()
                .collect::<Vec<_>>()
                .join(","),
        )
        .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Parses `RAFIKI_GPUS`: comma-separated device ids; empty for none.
pub fn parse_gpu_list(text: &str) -> Result<Vec<i32>, String> {
    let mut ids = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id: i32 = part
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| format!("RAFIKI_GPUS: `{part}` is not a device id"))?;
        if ids.contains(&id) {
            return Err(format!("RAFIKI_GPUS: device {id} is listed twice"));
        }
        ids.push(id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_all_or_nothing_and_releases() {
        let pool = GpuPool::new([0, 1, 2]);
        assert_eq!(pool.allocate(2).unwrap(), vec![0, 1]);
        let err = pool.allocate(2).unwrap_err();
        assert_eq!(
            err,
            GpuShortage {
                asked: 2,
                free: vec![2]
            }
        );
        assert_eq!(err.to_string(), "2 GPU(s) asked for, 1 free (2)");
        assert_eq!(pool.free(), vec![2], "a refused allocation takes nothing");
        pool.release(&[1, 7]);
        assert_eq!(pool.free(), vec![1, 2], "unknown ids are not added");
        pool.mark_used(&[2]);
        assert_eq!(pool.allocate(1).unwrap(), vec![1]);
        assert_eq!(pool.allocate(0).unwrap(), Vec::<i32>::new());
    }

    #[test]
    fn parses_device_lists() {
        assert_eq!(parse_gpu_list("").unwrap(), Vec::<i32>::new());
        assert_eq!(parse_gpu_list("0, 1,3").unwrap(), vec![0, 1, 3]);
        assert!(parse_gpu_list("0,x").is_err());
        assert!(parse_gpu_list("1,1").is_err());
        assert!(parse_gpu_list("-1").is_err());
    }
}
