//! The Docker engine as the container tests use it: whether they run at all, a CLI command
//! whose failure fails the test, and what an engine holds of a test's project (found by the
//! project label every object of the admin's carries): its objects for clean-up, its Swarm
//! services for checks.

use std::process::Command;

use rafiki_admin::backend::docker::labels;

/// Whether the tests that need Docker run: only with `RAFIKI_TEST_DOCKER=1`.
pub fn wanted() -> bool {
    let wanted = std::env::var("RAFIKI_TEST_DOCKER").is_ok_and(|v| v == "1");
    if !wanted {
        eprintln!(
            "skipped: RAFIKI_TEST_DOCKER is not 1 (scripts/test.sh sets it where Docker serves)"
        );
    }
    wanted
}

/// Runs the host's `docker` with these arguments; its standard output, or a panic with its
/// error.
pub fn run(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ids of `project`'s objects of one kind (`service`, `network`, `volume`, `container`),
/// as `docker <kind> ls` lists them by label: on the host's engine, or with `node` on the
/// engine inside that container (a node of the multi-node swarm). None when it cannot run.
pub fn listed(node: Option<&str>, kind: &str, project: &str) -> Vec<String> {
    let filter = format!("label={}={project}", labels::PROJECT);
    let mut args: Vec<&str> = match node {
        Some(node) => vec!["exec", node, "docker"],
        None => Vec::new(),
    };
    args.extend([kind, "ls", "-q", "--filter", filter.as_str()]);
    if kind == "container" {
        args.push("--all");
    }
    Command::new("docker")
        .args(&args)
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `project`'s Swarm services, as the manager behind `docker` lists them.
pub async fn swarm_services(
    docker: &bollard::Docker,
    project: &str,
) -> Vec<bollard::models::Service> {
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![format!("{}={project}", labels::PROJECT)],
    )]);
    let options = bollard::query_parameters::ListServicesOptionsBuilder::default()
        .filters(&filters)
        .build();
    docker
        .list_services(Some(options))
        .await
        .expect("the manager lists services")
}
