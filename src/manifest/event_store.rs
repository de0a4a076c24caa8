//! `eventStore:` in the manifest: where the audit trail goes besides the local journal.
//!
//! ```yaml
//! eventStore:
//!   dynamodb: { table: cloud-deployment-events, region: eu-west-1 }   # region optional
//!   cloudwatch: true                                                  # or { region: eu-west-1 }
//! ```
//! Both are optional; the command line (`--dynamodb-table`, `CLOUD_DYNAMODB_TABLE`,
//! `--cloudwatch`) turns them on too and wins over the manifest.

use super::error::{Loc, ManifestResult};
use super::yaml::Value;

const KEYS: &[&str] = &["dynamodb", "cloudwatch"];
const DYNAMODB_KEYS: &[&str] = &["table", "region"];
const CLOUDWATCH_KEYS: &[&str] = &["region"];

/// The manifest's `eventStore:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventStore {
    pub dynamodb: Option<DynamoDb>,
    pub cloudwatch: Option<CloudWatch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoDb {
    pub table: String,
    /// The AWS region; the standard AWS config chain decides when absent.
    pub region: Option<String>,
    /// Where `table` is written (for messages about the table).
    pub at: Loc,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudWatch {
    pub region: Option<String>,
}

/// Reads `eventStore:` (its value, which may be null).
pub fn parse(value: Value) -> ManifestResult<Option<EventStore>> {
    if value.is_null() {
        return Ok(None);
    }
    let example = "eventStore: { dynamodb: { table: cloud-deployment-events } }";
    let mut store = EventStore::default();
    for (key, key_at, v) in value.entries("`eventStore`", example)? {
        match key.as_str() {
            "dynamodb" => store.dynamodb = parse_dynamodb(v)?,
            "cloudwatch" => store.cloudwatch = parse_cloudwatch(v)?,
            _ => return Err(value.doc().unknown_key(&key, key_at, "`eventStore`", KEYS)),
        }
    }
    Ok(Some(store))
}

fn parse_dynamodb(v: Value) -> ManifestResult<Option<DynamoDb>> {
    let example = "dynamodb: { table: cloud-deployment-events }";
    if v.is_null() {
        return Ok(None);
    }
    let mut table = None;
    let mut region = None;
    for (key, key_at, item) in v.entries("`eventStore.dynamodb`", example)? {
        match key.as_str() {
            "table" => {
                let name = item.nonempty_string("`eventStore.dynamodb.table`", example)?;
                if let Err(why) = check_table_name(&name) {
                    return Err(item.err(
                        format!(
                            "invalid DynamoDB table name `{}`: {why}",
                            name.escape_debug()
                        ),
                        "a table name is 3-255 characters: letters, digits, `_`, `-` and `.` \
                         (e.g. cloud-deployment-events)",
                    ));
                }
                table = Some((name, item.at()));
            }
            "region" => {
                region =
                    Some(item.nonempty_string("`eventStore.dynamodb.region`", "region: eu-west-1")?)
            }
            _ => {
                return Err(v.doc().unknown_key(
                    &key,
                    key_at,
                    "`eventStore.dynamodb`",
                    DYNAMODB_KEYS,
                ))
            }
        }
    }
    let Some((table, at)) = table else {
        return Err(v.err(
            "`eventStore.dynamodb` names no `table`",
            format!("write it like `{example}`"),
        ));
    };
    Ok(Some(DynamoDb { table, region, at }))
}

fn parse_cloudwatch(v: Value) -> ManifestResult<Option<CloudWatch>> {
    if v.is_null() {
        return Ok(None);
    }
    if let Some(on) = v.boolean() {
        return Ok(on.then(CloudWatch::default));
    }
    if !v.is_map() {
        return Err(v.wrong_type(
            "`eventStore.cloudwatch`",
            "true, false or a mapping",
            "cloudwatch: true",
        ));
    }
    let mut cw = CloudWatch::default();
    for (key, key_at, item) in v.entries("`eventStore.cloudwatch`", "cloudwatch: true")? {
        match key.as_str() {
            "region" => {
                cw.region = Some(
                    item.nonempty_string("`eventStore.cloudwatch.region`", "region: eu-west-1")?,
                )
            }
            _ => {
                return Err(v.doc().unknown_key(
                    &key,
                    key_at,
                    "`eventStore.cloudwatch`",
                    CLOUDWATCH_KEYS,
                ))
            }
        }
    }
    Ok(Some(cw))
}

/// DynamoDB's rule for table names; `Err` says what is wrong.
pub fn check_table_name(name: &str) -> Result<(), &'static str> {
    if !(3..=255).contains(&name.len()) {
        return Err("it must be 3 to 255 characters long");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err("it may only hold letters, digits, `_`, `-` and `.`");
    }
    Ok(())
}
