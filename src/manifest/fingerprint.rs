//! A stack entry's digest, part of its smart-skip fingerprint: SHA-256 of its executor and its
//! entry as JSON data — maps sorted by key, as serde_json writes a `Value` — so that key order
//! and layout do not count. Written straight from the YAML tree: building a `serde_json::Value`
//! per stack and printing it was a tenth of reading a 10,000-stack manifest. The bytes are
//! the ones `Value::json().to_string()` gives (a test holds them to it): digests recorded by
//! earlier versions stay valid.

use sha2::{Digest, Sha256};

use super::error::ManifestResult;
use super::yaml::Value;

/// How drift is checked (`drift:`) and how failures are retried (`retry:`) are not what is
/// deployed.
const NOT_DEPLOYED: &[&str] = &["drift", "retry"];

/// The digest of a stack's entry `n` run by `executor`.
pub(super) fn entry(executor: &str, n: Value) -> ManifestResult<String> {
    let mut h = Sha256::new();
    h.update(executor.as_bytes());
    h.update([0]);
    let mut data = Vec::with_capacity(512);
    if n.is_map() {
        write(&mut data, n, NOT_DEPLOYED)?;
    } else {
        data.extend_from_slice(b"null");
    }
    h.update(&data);
    Ok(super::fingerprint_hex(&h.finalize()))
}

/// `v` as compact JSON, leaving out the keys `skip` names (of this mapping only).
fn write(out: &mut Vec<u8>, v: Value, skip: &[&str]) -> ManifestResult<()> {
    if v.is_map() {
        let mut entries = v.entries("this mapping", "key: value")?;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        out.push(b'{');
        let mut first = true;
        for (key, _, value) in entries {
            if skip.contains(&key.as_str()) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            put(out, key.as_str());
            out.push(b':');
            write(out, value, &[])?;
        }
        out.push(b'}');
    } else if v.is_list() {
        out.push(b'[');
        for (i, item) in v
            .items("this list", "a list", "[a, b]")?
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                out.push(b',');
            }
            write(out, item, &[])?;
        }
        out.push(b']');
    } else if v.is_null() {
        out.extend_from_slice(b"null");
    } else if let Some(b) = v.boolean() {
        put(out, b);
    } else if let Some(i) = v.integer() {
        put(out, i);
    } else if let Some(f) = v.number() {
        if !f.is_finite() {
            // Its error, as `Value::json` says it.
            v.json()?;
        }
        put(out, f);
    } else {
        put(out, v.scalar_text().unwrap_or_default());
    }
    Ok(())
}

/// A scalar as serde_json writes it (its escapes and number forms).
fn put(out: &mut Vec<u8>, scalar: impl serde::Serialize) {
    // (Writing to a Vec cannot fail.)
    let _ = serde_json::to_writer(out, &scalar);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml::{read_yaml, Doc};
    use std::path::Path;

    /// The digest as it was first defined: through a `serde_json::Value`.
    fn through_value(executor: &str, n: Value) -> ManifestResult<String> {
        let mut h = Sha256::new();
        h.update(executor.as_bytes());
        h.update([0]);
        let mut data = if n.is_map() {
            n.json()?
        } else {
            serde_json::Value::Null
        };
        if let Some(map) = data.as_object_mut() {
            for key in NOT_DEPLOYED {
                map.remove(*key);
            }
        }
        h.update(data.to_string().as_bytes());
        Ok(crate::manifest::fingerprint_hex(&h.finalize()))
    }

    #[test]
    fn the_digest_is_the_one_written_through_a_json_value() {
        let entries = [
            "executor: simulate",
            "{}",
            "~",
            "[1, 2]",
            "zeta: 1\nalpha: 2\nmid: { b: 1, a: [x, 'y', \"z\\n\\t\\u00e9\"] }",
            "resources:\n  - { type: \"aws:s3/bucket:Bucket\", name: r0, seconds: 0 }\n  - { type: t, name: r1, seconds: 1.5 }\n",
            "n: [0, -1, 1.0, 1e3, 2.5e-7, 123456789012345678901234567890, 0.1, -0.0, .5]",
            "b: [true, false, null, yes, no, on, '', \"\"]",
            "drift: { r0: changed }\nretry: { attempts: 3 }\nkeep: 1",
            "nested: { drift: kept, retry: kept }",
            "unicode: { \"ключ\": \"значение\", emoji: \"🚀\", ctl: \"a\\u0001b\", q: 'it''s \"x\"' }",
            "big: 9223372036854775807\nsmall: -9223372036854775808\nover: 9223372036854775808",
            "path: stacks/network\ninputs: { vpc: \"${network.vpcId}\" }\ntimeout: 30m",
            "'10': a\n'9': b\n'1e3': c\nA: d\na: e\n_: f",
        ];
        for (i, text) in entries.iter().enumerate() {
            let root = read_yaml(text).unwrap_or_else(|e| panic!("entry {i}: {e}"));
            let doc = Doc {
                file: Path::new("deployment.yaml"),
                source: text,
            };
            let value = doc.value(&root);
            for executor in ["simulate", "command"] {
                assert_eq!(
                    entry(executor, value).ok(),
                    through_value(executor, value).ok(),
                    "entry {i}: {text}"
                );
            }
        }
        // A number that JSON cannot hold is refused the same way.
        let text = "x: .inf";
        let root = read_yaml(text).unwrap();
        let doc = Doc {
            file: Path::new("deployment.yaml"),
            source: text,
        };
        let (a, b) = (
            entry("simulate", doc.value(&root)),
            through_value("simulate", doc.value(&root)),
        );
        assert_eq!(a.unwrap_err().message, b.unwrap_err().message);
    }
}
