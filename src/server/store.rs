//! Where the server reads stored runs from: the boundary between the server and an event store.
//!
//! [`StoredRuns`] answers "which deployments are there", "the newest run's events" (the REST audit
//! trail beyond what the hub keeps in memory) and, through a [`Follower`], "what was appended
//! since I last asked" (`cloud serve` following runs still going). [`JournalStore`] reads the
//! journals under `--root`; a DynamoDB store implements the same two traits over the
//! `cloud-deployment-events` table (query by `deploymentId`, newest `runId`, `sequence` order)
//! and is handed to the server in its place.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Deserialize;

use crate::event::Event;
use crate::health::Health;
use crate::store::journal;

/// A deployment and environment: the unit a WebSocket channel and the REST paths name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelKey {
    pub deployment: String,
    pub environment: String,
}

impl ChannelKey {
    pub fn new(deployment: &str, environment: &str) -> Self {
        ChannelKey {
            deployment: deployment.to_owned(),
            environment: environment.to_owned(),
        }
    }

    /// `deployments/<ID>-<env>`, the seed's channel name.
    pub fn channel(&self) -> String {
        format!("deployments/{}-{}", self.deployment, self.environment)
    }

    /// The ways `<ID>-<env>` can be split (IDs and environments may hold `-` themselves).
    pub fn candidates(channel: &str) -> Vec<ChannelKey> {
        let Some(rest) = channel.strip_prefix("deployments/") else {
            return Vec::new();
        };
        rest.match_indices('-')
            .map(|(i, _)| ChannelKey::new(&rest[..i], &rest[i + 1..]))
            .filter(|k| !k.deployment.is_empty() && !k.environment.is_empty())
            .collect()
    }
}

/// A deployment the store knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDeployment {
    pub id: String,
    /// Environments its manifest lists, and any that have recorded runs.
    pub environments: Vec<String>,
}

/// Stored runs, read back.
pub trait StoredRuns: Send + Sync + 'static {
    /// Every deployment, sorted by ID.
    fn deployments(&self) -> io::Result<Vec<StoredDeployment>>;
    /// The newest run of `key`: its events with a sequence above `since`; `None` without a run.
    fn events(&self, key: &ChannelKey, since: u64) -> io::Result<Option<Vec<Event>>>;
    /// Something that hands out newly stored events, in order, each time it is polled.
    fn follower(&self) -> Box<dyn Follower>;
    /// The newest run's file log (secrets already redacted when it was written); `None`
    /// where there is none, or the store keeps none.
    fn file_log(&self, _key: &ChannelKey) -> io::Result<Option<String>> {
        Ok(None)
    }
    /// Each stack's drift health, as the runs left it; empty where the store keeps none.
    fn health(&self, _key: &ChannelKey) -> BTreeMap<String, Health> {
        BTreeMap::new()
    }
}

/// A deployment ID or environment that can name a folder: no separators, no `..`, nothing
/// hidden (a path from a request must not reach outside `cloud/deploy/`).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Polled by `cloud serve`: the first poll returns the newest run of every deployment and
/// environment, later ones what was appended since (a new run starts with its sequence 1).
pub trait Follower: Send {
    fn poll(&mut self) -> io::Result<Vec<Event>>;
}

/// The journals under `<root>/cloud/deploy/`.
#[derive(Debug, Clone)]
pub struct JournalStore {
    deploy_dir: PathBuf,
    /// Serve only this deployment and environment (`cloud deploy --serve`).
    only: Option<ChannelKey>,
    /// Each manifest's environments, read again only when the file changes (the follower
    /// asks several times a second).
    environments: Arc<Mutex<HashMap<PathBuf, Listed>>>,
}

/// A manifest's environments, and when the file was last changed as they were read.
type Listed = (Option<SystemTime>, Vec<String>);

impl JournalStore {
    pub fn new(root: &Path) -> Self {
        JournalStore {
            deploy_dir: root.join("cloud").join("deploy"),
            only: None,
            environments: Arc::default(),
        }
    }

    fn manifest_environments(&self, path: &Path) -> Vec<String> {
        let modified = fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut cache = self.environments.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((when, envs)) = cache.get(path) {
            if *when == modified {
                return envs.clone();
            }
        }
        let envs = manifest_environments(path);
        cache.insert(path.to_path_buf(), (modified, envs.clone()));
        envs
    }

    pub fn only(mut self, key: ChannelKey) -> Self {
        self.only = Some(key);
        self
    }

    fn journal_dir(&self, key: &ChannelKey) -> PathBuf {
        journal::dir(&self.deploy_dir.join(&key.deployment), &key.environment)
    }

    fn channels(&self) -> io::Result<Vec<ChannelKey>> {
        Ok(self
            .deployments()?
            .into_iter()
            .flat_map(|d| {
                d.environments
                    .into_iter()
                    .map(move |env| ChannelKey::new(&d.id, &env))
            })
            .collect())
    }
}

/// Just the `environments:` of a manifest (a manifest that does not parse lists none).
fn manifest_environments(path: &Path) -> Vec<String> {
    #[derive(Deserialize)]
    struct Envs {
        #[serde(default)]
        environments: Vec<String>,
    }
    fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_saphyr::from_str::<Envs>(&text).ok())
        .map(|e| e.environments)
        .unwrap_or_default()
}

fn subdirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

impl StoredRuns for JournalStore {
    fn deployments(&self) -> io::Result<Vec<StoredDeployment>> {
        if let Some(only) = &self.only {
            return Ok(vec![StoredDeployment {
                id: only.deployment.clone(),
                environments: vec![only.environment.clone()],
            }]);
        }
        let mut found = Vec::new();
        for id in subdirs(&self.deploy_dir) {
            let dir = self.deploy_dir.join(&id);
            let manifest = dir.join("deployment.yaml");
            let recorded = subdirs(&dir.join("journal"));
            if !manifest.is_file() && recorded.is_empty() {
                continue;
            }
            let mut environments = self.manifest_environments(&manifest);
            for env in recorded {
                if !environments.contains(&env) {
                    environments.push(env);
                }
            }
            found.push(StoredDeployment { id, environments });
        }
        Ok(found)
    }

    fn events(&self, key: &ChannelKey, since: u64) -> io::Result<Option<Vec<Event>>> {
        if self.only.as_ref().is_some_and(|only| only != key) {
            return Ok(None);
        }
        let Some(path) = journal::latest_run(&self.journal_dir(key)) else {
            return Ok(None);
        };
        let mut events = journal::read(&path)?.events;
        events.retain(|e| e.sequence > since);
        Ok(Some(events))
    }

    fn file_log(&self, key: &ChannelKey) -> io::Result<Option<String>> {
        let outside = self.only.as_ref().is_some_and(|only| only != key);
        if outside || !is_plain_name(&key.deployment) || !is_plain_name(&key.environment) {
            return Ok(None);
        }
        let dir = self.deploy_dir.join(&key.deployment);
        match crate::store::filelog::latest(&dir, &key.environment) {
            Some(path) => fs::read_to_string(path).map(Some),
            None => Ok(None),
        }
    }

    fn health(&self, key: &ChannelKey) -> BTreeMap<String, Health> {
        let outside = self.only.as_ref().is_some_and(|only| only != key);
        if outside || !is_plain_name(&key.deployment) || !is_plain_name(&key.environment) {
            return BTreeMap::new();
        }
        let dir = self.deploy_dir.join(&key.deployment);
        crate::store::history::RunHistory::load(&journal::dir(&dir, &key.environment))
            .stacks
            .into_iter()
            .filter_map(|(name, h)| Some((name, h.health?)))
            .collect()
    }

    fn follower(&self) -> Box<dyn Follower> {
        Box::new(JournalFollower {
            store: self.clone(),
            tails: HashMap::new(),
        })
    }
}

/// Where a followed journal was read up to.
struct Tail {
    path: PathBuf,
    offset: u64,
    /// The start of a line not yet complete.
    partial: Vec<u8>,
}

struct JournalFollower {
    store: JournalStore,
    tails: HashMap<ChannelKey, Tail>,
}

impl Follower for JournalFollower {
    fn poll(&mut self) -> io::Result<Vec<Event>> {
        let mut events = Vec::new();
        for key in self.store.channels()? {
            let Some(newest) = journal::latest_run(&self.store.journal_dir(&key)) else {
                continue;
            };
            let tail = self.tails.entry(key).or_insert_with(|| Tail {
                path: newest.clone(),
                offset: 0,
                partial: Vec::new(),
            });
            if tail.path != newest {
                // A new run: read it from its start.
                *tail = Tail {
                    path: newest,
                    offset: 0,
                    partial: Vec::new(),
                };
            }
            let Ok(mut file) = File::open(&tail.path) else {
                continue;
            };
            file.seek(SeekFrom::Start(tail.offset))?;
            let mut bytes = std::mem::take(&mut tail.partial);
            let read = file.read_to_end(&mut bytes)?;
            tail.offset += read as u64;
            let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            tail.partial = bytes.split_off(complete);
            for line in bytes.split(|&b| b == b'\n') {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                // A line that is not an event is `cloud status`'s to report; skip it here.
                if let Ok(event) = serde_json::from_slice::<Event>(line) {
                    events.push(event);
                }
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_split_every_way() {
        let keys = ChannelKey::candidates("deployments/my-app-prod-eu");
        assert_eq!(
            keys,
            vec![
                ChannelKey::new("my", "app-prod-eu"),
                ChannelKey::new("my-app", "prod-eu"),
                ChannelKey::new("my-app-prod", "eu"),
            ]
        );
        assert!(ChannelKey::candidates("D1BRV40-dev").is_empty());
        assert!(ChannelKey::candidates("deployments/-dev").is_empty());
        assert_eq!(ChannelKey::new("D1", "dev").channel(), "deployments/D1-dev");
    }
}
