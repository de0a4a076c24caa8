//! A manifest's outline — its environments and its stacks with their dependencies, in order —
//! read without validating it, for what needs names and nothing else (Tab completion). Every
//! other key is skipped by the YAML reader without being built, so this costs a fraction of
//! [`super::load`]; a manifest it cannot read gives `None` (completion then offers nothing, and
//! the command itself says what is wrong).
//!
//! An outline read is kept in the user's cache folder (`$XDG_CACHE_HOME/cloud/outlines/`, else
//! `~/.cache/cloud/outlines/`), keyed by the manifest's path and stamped with its size, inode
//! and modification and change times: a Tab press on an unchanged manifest reads that small
//! file instead of the whole YAML. Nothing is written in the project.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use granit_parser::{Event, ScanError, Span};

/// What Tab completion needs of a manifest.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Outline {
    pub environments: Vec<String>,
    /// In the manifest's order.
    pub stacks: Vec<OutlineStack>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct OutlineStack {
    pub name: String,
    pub dependencies: Vec<String>,
}

/// The outline of deployment `id` under `root`; `None` when it cannot be read.
pub fn outline(root: &Path, id: &str) -> Option<Outline> {
    super::validate::check_folder_name(id).ok()?;
    let path = std::path::absolute(super::manifest_path(root, id)).ok()?;
    let stamp = Stamp::of(&path)?;
    let cache = cache_file(&path);
    if let Some(kept) = cache.as_deref().and_then(|c| Cached::read(c, &stamp)) {
        return Some(kept);
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let outline = read(&text)?;
    if let Some(cache) = cache {
        // A cache that cannot be written only costs the next Tab press its read.
        let _ = Cached::write(&cache, stamp, &outline);
    }
    Some(outline)
}

/// What says a manifest is the one an outline was read from.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    len: u64,
    inode: u64,
    modified_ns: i128,
    changed_ns: i128,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        Some(Stamp {
            len: m.len(),
            inode: m.ino(),
            modified_ns: ns(m.mtime(), m.mtime_nsec()),
            changed_ns: ns(m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The cache file of the manifest at `path` (absolute): `None` without a cache folder.
fn cache_file(path: &Path) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
            Some(PathBuf::from(home).join(".cache"))
        })?;
    // FNV-1a of the path: stable, and the file name says nothing of the project.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in path.as_os_str().as_encoded_bytes() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    Some(
        base.join("cloud/outlines")
            .join(format!("{hash:016x}.json")),
    )
}

/// An outline as cached, with the stamp of the manifest it was read from.
#[derive(Deserialize)]
struct Cached {
    stamp: Stamp,
    outline: Outline,
}

/// [`Cached`] as written (the outline is the caller's).
#[derive(Serialize)]
struct CachedRef<'a> {
    stamp: &'a Stamp,
    outline: &'a Outline,
}

impl Cached {
    fn read(cache: &Path, stamp: &Stamp) -> Option<Outline> {
        let kept: Cached = serde_json::from_slice(&std::fs::read(cache).ok()?).ok()?;
        (kept.stamp == *stamp).then_some(kept.outline)
    }

    /// Written whole, then renamed: a Tab press never reads half a cache.
    fn write(cache: &Path, stamp: Stamp, outline: &Outline) -> std::io::Result<()> {
        let dir = cache.parent().expect("in a folder");
        std::fs::create_dir_all(dir)?;
        let tmp = cache.with_extension(format!("{}.tmp", std::process::id()));
        let body = CachedRef {
            stamp: &stamp,
            outline,
        };
        std::fs::write(&tmp, serde_json::to_vec(&body)?)?;
        std::fs::rename(tmp, cache)
    }
}

/// Reads the outline from the parser's events: the values of `environments`, the keys of
/// `stacks` and their `dependencies`; every other node is passed over without being built (so
/// no size limit but the parser's applies). Names are scalars as written.
fn read(text: &str) -> Option<Outline> {
    let mut events = Events(super::yaml::parser(text));
    let mut outline = Outline::default();
    let Event::MappingStart(..) = events.next()? else {
        return None;
    };
    while let Some(key) = events.key()? {
        let value = events.next()?;
        match key.as_str() {
            "environments" => outline.environments = events.names(value)?,
            "stacks" => outline.stacks = events.stacks(value)?,
            _ => events.skip(&value)?,
        }
    }
    Some(outline)
}

/// The parser's node events, for a reader that walks them in order.
struct Events<I>(I);

impl<'a, I: Iterator<Item = Result<(Event<'a>, Span), ScanError>>> Events<I> {
    /// The next node event, or the end of a collection; `None` at the end or on an error.
    fn next(&mut self) -> Option<Event<'a>> {
        loop {
            match self.0.next()?.ok()?.0 {
                Event::StreamStart | Event::DocumentStart(..) | Event::DocumentEnd => {}
                Event::StreamEnd => return None,
                event => return Some(event),
            }
        }
    }

    /// The next key of the mapping being read (`Ok(None)` at its end); a key that is no scalar
    /// is passed over with its value.
    fn key(&mut self) -> Option<Option<String>> {
        loop {
            match self.next()? {
                Event::MappingEnd => return Some(None),
                Event::Scalar(key, ..) => return Some(Some(key.into_owned())),
                other => {
                    self.skip(&other)?;
                    let value = self.next()?;
                    self.skip(&value)?;
                }
            }
        }
    }

    /// Passes over the rest of the node that `first` begins.
    fn skip(&mut self, first: &Event) -> Option<()> {
        let mut depth = 0usize;
        let mut event = None;
        loop {
            match event.as_ref().unwrap_or(first) {
                Event::SequenceStart(..) | Event::MappingStart(..) => depth += 1,
                Event::SequenceEnd | Event::MappingEnd => depth = depth.checked_sub(1)?,
                _ => {}
            }
            if depth == 0 {
                return Some(());
            }
            event = Some(self.next()?);
        }
    }

    /// The scalars of a list (`null`: none); other items are passed over.
    fn names(&mut self, first: Event) -> Option<Vec<String>> {
        let mut names = Vec::new();
        if let Event::SequenceStart(..) = first {
            loop {
                match self.next()? {
                    Event::SequenceEnd => break,
                    Event::Scalar(name, ..) => names.push(name.into_owned()),
                    other => self.skip(&other)?,
                }
            }
        } else {
            self.skip(&first)?;
        }
        Some(names)
    }

    /// `stacks:`, a mapping of names to entries (a stack may be written with no value: `a:`).
    fn stacks(&mut self, first: Event) -> Option<Vec<OutlineStack>> {
        let mut stacks = Vec::new();
        let Event::MappingStart(..) = first else {
            self.skip(&first)?;
            return Some(stacks);
        };
        while let Some(name) = self.key()? {
            let mut stack = OutlineStack {
                name,
                dependencies: Vec::new(),
            };
            match self.next()? {
                Event::MappingStart(..) => {
                    while let Some(key) = self.key()? {
                        let value = self.next()?;
                        match key.as_str() {
                            "dependencies" => stack.dependencies = self.names(value)?,
                            _ => self.skip(&value)?,
                        }
                    }
                }
                other => self.skip(&other)?,
            }
            stacks.push(stack);
        }
        Some(stacks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_order_and_nothing_else_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cloud/deploy/D");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("deployment.yaml"),
            "environments: [dev, prod]\nstacks:\n  zeta: { executor: nope, whatever: [1, 2] }\n  alpha:\n    dependencies: [zeta]\n  empty:\n",
        )
        .unwrap();
        let outline = outline(dir.path(), "D").unwrap();
        assert_eq!(outline.environments, ["dev", "prod"]);
        let stacks: Vec<(&str, &[String])> = outline
            .stacks
            .iter()
            .map(|s| (s.name.as_str(), s.dependencies.as_slice()))
            .collect();
        assert_eq!(
            stacks,
            [
                ("zeta", &[][..]),
                ("alpha", &["zeta".to_owned()][..]),
                ("empty", &[][..])
            ]
        );
        assert!(super::outline(dir.path(), "../D").is_none());
        std::fs::write(folder.join("deployment.yaml"), "- not\n- a mapping\n").unwrap();
        assert!(super::outline(dir.path(), "D").is_none());
        assert!(super::outline(dir.path(), "missing").is_none());
    }

    /// A big deployment completes too: the outline has no size limit but the parser's (serde's
    /// default budget, 250,000 nodes, made a 10,000-stack manifest complete nothing).
    #[test]
    fn an_unchanged_manifest_is_read_from_the_cache_and_a_changed_one_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let manifest = dir.path().join("cloud/deploy/C/deployment.yaml");
        std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
        std::fs::write(&manifest, "environments: [dev]\nstacks:\n  a: {}\n").unwrap();
        let stamp = Stamp::of(&manifest).unwrap();
        let file = cache.join("c.json");
        let first = read("environments: [dev]\nstacks:\n  a: {}\n").unwrap();
        Cached::write(&file, stamp, &first).unwrap();
        let kept = Cached::read(&file, &Stamp::of(&manifest).unwrap()).unwrap();
        assert_eq!(kept.stacks[0].name, "a");
        // Changed (another size, another time): the cache no longer answers.
        std::fs::write(
            &manifest,
            "environments: [dev]\nstacks:\n  a: {}\n  bb: {}\n",
        )
        .unwrap();
        assert!(Cached::read(&file, &Stamp::of(&manifest).unwrap()).is_none());
    }

    #[test]
    fn a_manifest_of_any_size() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cloud/deploy/BIG");
        std::fs::create_dir_all(&folder).unwrap();
        let mut yaml = String::from("environments: [dev]\nstacks:\n");
        let values = vec!["0"; 100].join(", ");
        for i in 0..3_000 {
            yaml.push_str(&format!("  s{i}:\n    resources: [{values}]\n"));
            if i > 0 {
                yaml.push_str(&format!("    dependencies: [s{}]\n", i - 1));
            }
        }
        std::fs::write(folder.join("deployment.yaml"), yaml).unwrap();
        let outline = outline(dir.path(), "BIG").expect("an outline");
        assert_eq!(outline.stacks.len(), 3_000);
        assert_eq!(outline.stacks[2_999].name, "s2999");
        assert_eq!(outline.stacks[2_999].dependencies, ["s2998"]);
    }
}
