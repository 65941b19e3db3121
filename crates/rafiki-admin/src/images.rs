//! The operator's allow-list of images models may run in (`RAFIKI_ALLOWED_IMAGES`). A model's
//! `docker_image` is checked when it is uploaded and again whenever its workers are launched,
//! so a model uploaded before the list was narrowed cannot run an image that is no longer
//! allowed. The list is compared with the names as written: `python:3.11` and
//! `docker.io/library/python:3.11` are different names to it.

use std::fmt;

/// The setting's environment name, for messages.
pub const SETTING: &str = "RAFIKI_ALLOWED_IMAGES";

/// Which images models may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedImages(Vec<String>);

impl AllowedImages {
    /// Parses the comma-separated setting; empty text means the repository of `worker_image`
    /// (`rafiki-rs/worker` for `rafiki-rs/worker:latest`).
    pub fn parse(text: &str, worker_image: &str) -> Result<AllowedImages, String> {
        let entries: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = entries
            .iter()
            .find(|e| e.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(format!("{SETTING}: `{bad}` is not an image name or prefix"));
        }
        if entries.is_empty() {
            return Ok(AllowedImages(vec![repository(worker_image).to_owned()]));
        }
        Ok(AllowedImages(entries))
    }

    /// Whether `image` may run. An entry ending in `/` admits every image under that path
    /// (`registry.local/models/`); an entry with a tag or digest admits exactly itself; an entry
    /// without one admits its repository with any tag or digest (`rafiki-rs/worker` admits
    /// `rafiki-rs/worker` and `rafiki-rs/worker:1`, not `rafiki-rs/worker-evil`).
    pub fn admits(&self, image: &str) -> bool {
        self.0.iter().any(|entry| {
            if entry.ends_with('/') {
                return image.starts_with(entry.as_str());
            }
            if image == entry {
                return true;
            }
            let pinned = entry.contains('@') || repository(entry) != entry;
            !pinned
                && image.strip_prefix(entry.as_str()).is_some_and(|rest| {
                    (rest.starts_with(':') || rest.starts_with('@')) && !rest.contains('/')
                })
        })
    }
}

impl fmt::Display for AllowedImages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// An image name without its tag or digest (`registry:5000/a/b:1` -> `registry:5000/a/b`).
pub fn repository(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(name, _)| name);
    // A colon after the last slash starts the tag; one before it belongs to a registry port.
    let last_part = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[last_part..].find(':') {
        Some(colon) => &image[..last_part + colon],
        None => image,
    }
}

/// The 400 message for an image the list does not admit.
pub fn refusal(image: &str, allowed: &AllowedImages) -> String {
    format!(
        "The image `{image}` is not allowed on this deployment: {SETTING} admits {allowed}. \
         Ask an operator to add it, or use an image it admits."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_worker_images_repository() {
        let allowed = AllowedImages::parse("", "rafiki-rs/worker:latest").unwrap();
        assert_eq!(allowed.to_string(), "rafiki-rs/worker");
        assert!(allowed.admits("rafiki-rs/worker:latest"));
        assert!(allowed.admits("rafiki-rs/worker:2"));
        assert!(allowed.admits("rafiki-rs/worker@sha256:abc"));
        assert!(allowed.admits("rafiki-rs/worker"));
        assert!(!allowed.admits("rafiki-rs/worker-evil:1"));
        assert!(!allowed.admits("rafiki-rs/workerx"));
        assert!(!allowed.admits("rafiki-rs/predictor:latest"));
        assert!(!allowed.admits("evil/rafiki-rs/worker:1"));
        assert!(!allowed.admits("rafiki-rs/worker:1/evil"));
        let port = AllowedImages::parse(" ", "registry:5000/team/worker:3").unwrap();
        assert_eq!(port.to_string(), "registry:5000/team/worker");
    }

    #[test]
    fn prefixes_exact_names_and_repositories_are_told_apart() {
        let allowed =
            AllowedImages::parse("registry.local/models/, python:3.11, team/worker", "x:1")
                .unwrap();
        assert!(allowed.admits("registry.local/models/torch:2"));
        assert!(allowed.admits("registry.local/models/deep/cv"));
        assert!(!allowed.admits("registry.local/modelsx/torch:2"));
        assert!(allowed.admits("python:3.11"));
        assert!(!allowed.admits("python:3.12"));
        assert!(!allowed.admits("python:3.11-slim"));
        assert!(allowed.admits("team/worker:7"));
        assert!(!allowed.admits("team/worker2:7"));
        assert!(
            !allowed.admits("x:1"),
            "the default applies only to an empty list"
        );
        assert!(AllowedImages::parse("a b", "x").is_err());
    }

    #[test]
    fn repositories_drop_tags_and_digests_but_not_ports() {
        assert_eq!(repository("a/b:1"), "a/b");
        assert_eq!(repository("host:5000/a/b"), "host:5000/a/b");
        assert_eq!(repository("host:5000/a/b:2"), "host:5000/a/b");
        assert_eq!(repository("a/b@sha256:00"), "a/b");
        assert_eq!(repository("ubuntu"), "ubuntu");
    }
}
