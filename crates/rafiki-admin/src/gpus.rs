//! The GPUs of the admin's own host (`RAFIKI_GPUS`, e.g. `0,1`, or `auto` to ask
//! `nvidia-smi`): the inventory of the one node of the process and docker backends
//! (`cluster::LocalInventory`). Swarm nodes declare theirs in a node label.

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
    fn parses_device_lists() {
        assert_eq!(parse_gpu_list("").unwrap(), Vec::<i32>::new());
        assert_eq!(parse_gpu_list("0, 1,3").unwrap(), vec![0, 1, 3]);
        assert!(parse_gpu_list("0,x").is_err());
        assert!(parse_gpu_list("1,1").is_err());
        assert!(parse_gpu_list("-1").is_err());
    }
}
