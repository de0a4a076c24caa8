//! The DynamoDB event store: the table client, the item layout, the batch writer (with its
//! retry policy) and the queries that read the audit trail back. Used by the sink
//! ([`crate::sink::dynamodb`]), `cloud events` / `status` / `history`, and the spool replay.
//!
//! Layout (the README's audit-trail section): partition key `deploymentId`, sort key `timestamp`, one item per event.
//! The sort key is the event's time made unique — `2025-10-09T14:30:00.123Z#<runId>#<sequence,
//! 10 digits>` — so that events of the same millisecond, in several environments and runs at
//! once, never overwrite each other, and so that writing the same event twice writes the same
//! item (replays are idempotent: that is how "exactly once" is kept across retries and crashes).
//! Attributes: `type`, `environment`, `stack` (when the event is about one), `data` (the
//! event's `data`, as a DynamoDB map), `user`, `runId`, `sequence`, and `truncated` on items
//! cut to fit DynamoDB's 400 KB.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, WriteRequest,
};
use aws_sdk_dynamodb::Client;

use crate::event::{format_timestamp, Event};

/// The default table name (documented in the README).
pub const DEFAULT_TABLE: &str = "cloud-deployment-events";
/// DynamoDB's limit on one BatchWriteItem.
pub const BATCH: usize = 25;
/// What a truncated value says about itself; `cloud events` shows it as written.
pub const TRUNCATED_MARKER: &str = "[truncated by cloud:";
/// The room `data` may take in an item: DynamoDB's 400 KB, less the other attributes (a few
/// hundred bytes) and a wide margin.
const DATA_BUDGET: usize = 350 * 1024;

/// One item, as DynamoDB takes it.
pub type Item = HashMap<String, AttributeValue>;

/// A table and the client that reaches it.
#[derive(Clone, Debug)]
pub struct Table {
    pub client: Client,
    pub name: String,
}

/// How to reach the table: its name and, optionally, the region (else the AWS config chain's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub table: String,
    pub region: Option<String>,
}

/// The SDK configured the standard way (environment, profile, `AWS_ENDPOINT_URL`), with HTTPS
/// on rustls+ring, no retries of its own (callers own the retry policy: see
/// [`Table::write_batch`]) and short timeouts, so an unreachable table is known in seconds.
pub async fn sdk_config(region: Option<&str>) -> aws_config::SdkConfig {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(20))
                .build(),
        );
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    loader.load().await
}

/// Why the table could not be asked or answered (no region, unreachable, missing, no
/// permission, throttled past patience), in words with the fix: a command that needs the
/// table fails (exit 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError(pub String);

impl TableError {
    pub fn of<E>(e: &SdkError<E, HttpResponse>, table: &str) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        TableError(describe(e, table))
    }
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TableError {}

/// Why the AWS config cannot be used, in words with the fix; `None` when it can.
pub fn config_problem(config: &aws_config::SdkConfig) -> Option<String> {
    config.region().is_none().then(|| {
        "no AWS region is configured: set AWS_REGION (or `region:` under `eventStore.dynamodb` \
         in the manifest)"
            .to_owned()
    })
}

impl Table {
    pub async fn connect(target: &Target) -> Result<Table, TableError> {
        let config = sdk_config(target.region.as_deref()).await;
        if let Some(problem) = config_problem(&config) {
            return Err(TableError(problem));
        }
        Ok(Table {
            client: Client::new(&config),
            name: target.table.clone(),
        })
    }

    /// Creates the table with on-demand billing and waits until it is active. `Ok(false)`
    /// when it already existed.
    pub async fn create(&self) -> Result<bool, TableError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| TableError(e.to_string()))
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| TableError(e.to_string()))
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("deploymentId")?)
            .attribute_definitions(attr("timestamp")?)
            .key_schema(key("deploymentId", KeyType::Hash)?)
            .key_schema(key("timestamp", KeyType::Range)?)
            .send()
            .await;
        let fresh = match created {
            Ok(_) => true,
            Err(e) if code(&e) == Some("ResourceInUseException") => false,
            Err(e) => return Err(TableError::of(&e, &self.name)),
        };
        // Wait (a minute at most) until the table takes writes.
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let status = self
                .client
                .describe_table()
                .table_name(&self.name)
                .send()
                .await
                .map_err(|e| TableError::of(&e, &self.name))?;
            let active = status
                .table()
                .and_then(|t| t.table_status())
                .is_some_and(|s| s.as_str() == "ACTIVE");
            if active {
                return Ok(fresh);
            }
            if Instant::now() > until {
                return Err(TableError(format!(
                    "table {} did not become active in 60s",
                    self.name
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Writes one batch (at most [`BATCH`] items), retrying throttling and `UnprocessedItems`
    /// with exponential backoff and jitter, until every item is written, the table proves
    /// unreachable or refuses for good, or `until` passes. Never gives up an item silently:
    /// whatever was not written comes back in [`Written::left`].
    pub async fn write_batch(&self, batch: Vec<Item>, until: Option<Instant>) -> Written {
        let mut out = Written::default();
        let mut left: Vec<WriteRequest> = batch.into_iter().filter_map(put).collect();
        let mut attempt = 0u32;
        let mut unreachable_tries = 0u32;
        while !left.is_empty() {
            if until.is_some_and(|u| Instant::now() >= u) {
                break;
            }
            let sent = self
                .client
                .batch_write_item()
                .request_items(&self.name, left.clone())
                .send()
                .await;
            match sent {
                Ok(reply) => {
                    unreachable_tries = 0;
                    let unprocessed = reply
                        .unprocessed_items()
                        .and_then(|u| u.get(&self.name))
                        .cloned()
                        .unwrap_or_default();
                    out.written += left.len().saturating_sub(unprocessed.len());
                    if !unprocessed.is_empty() {
                        out.retries += 1;
                        // Progress resets the wait; none makes it grow.
                        attempt = if unprocessed.len() < left.len() {
                            1
                        } else {
                            attempt + 1
                        };
                        left = unprocessed;
                        backoff(attempt, until).await;
                    } else {
                        left.clear();
                    }
                }
                Err(e) => match classify(&e) {
                    Kind::Throttled => {
                        out.retries += 1;
                        attempt += 1;
                        backoff(attempt, until).await;
                    }
                    Kind::Unreachable => {
                        unreachable_tries += 1;
                        if unreachable_tries >= 3 {
                            out.trouble = Some(Trouble::Unreachable(describe(&e, &self.name)));
                            break;
                        }
                        attempt += 1;
                        backoff(attempt, until).await;
                    }
                    Kind::Invalid if left.len() > 1 => {
                        // One item spoils the batch: write them one by one to find it.
                        let items: Vec<Item> = left.drain(..).filter_map(item_of).collect();
                        for item in items {
                            let one = Box::pin(self.write_batch(vec![item], until)).await;
                            out.absorb(one);
                        }
                    }
                    Kind::Invalid => {
                        // Keep what DynamoDB refuses in a form it takes: the event as text.
                        let fallback = left
                            .pop()
                            .and_then(item_of)
                            .filter(|i| !i.contains_key("unstorable"))
                            .map(|i| unstorable(i, &describe(&e, &self.name)));
                        match fallback {
                            Some(item) => left = put(item).into_iter().collect(),
                            None => {
                                out.trouble = Some(Trouble::Refused(describe(&e, &self.name)));
                                break;
                            }
                        }
                    }
                    Kind::Refused => {
                        out.trouble = Some(Trouble::Refused(describe(&e, &self.name)));
                        break;
                    }
                },
            }
        }
        out.left.extend(left.into_iter().filter_map(item_of));
        out
    }

    /// Writes `items` in batches of [`BATCH`], `concurrency` batches at a time. Once the
    /// table proves unreachable no new batch starts: the rest comes back in `left`.
    pub async fn write_all(
        &self,
        items: Vec<Item>,
        concurrency: usize,
        until: Option<Instant>,
    ) -> Written {
        let mut out = Written::default();
        let mut rest = items.into_iter();
        let mut flying = tokio::task::JoinSet::new();
        loop {
            while flying.len() < concurrency.max(1) && out.trouble.is_none() {
                let batch: Vec<Item> = rest.by_ref().take(BATCH).collect();
                if batch.is_empty() {
                    break;
                }
                let table = self.clone();
                flying.spawn(async move { table.write_batch(batch, until).await });
            }
            match flying.join_next().await {
                Some(Ok(done)) => out.absorb(done),
                // write_batch does not panic; were it to, its items are in neither count:
                // `lost_track` tells the caller to keep its source as it is.
                Some(Err(e)) => {
                    out.lost_track = true;
                    out.trouble
                        .get_or_insert(Trouble::Refused(format!("a write crashed: {e}")));
                }
                None => break,
            }
        }
        out.left.extend(rest);
        out
    }

    /// Every item of `deployment_id` matching `query`, in sort-key order.
    pub async fn query(&self, deployment_id: &str, query: &Query) -> Result<Vec<Item>, TableError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut names = HashMap::new();
            let mut values = HashMap::new();
            values.insert(":d".to_owned(), s(deployment_id));
            let mut key = "deploymentId = :d".to_owned();
            if let Some(since) = &query.since {
                names.insert("#ts".to_owned(), "timestamp".to_owned());
                values.insert(":since".to_owned(), s(since));
                key.push_str(" AND #ts >= :since");
            }
            let mut filters = Vec::new();
            let mut filter = |attr: &str, name: &str, value: &Option<String>| {
                if let Some(v) = value {
                    names.insert(format!("#{name}"), attr.to_owned());
                    values.insert(format!(":{name}"), s(v));
                    filters.push(format!("#{name} = :{name}"));
                }
            };
            filter("environment", "env", &query.environment);
            filter("runId", "run", &query.run_id);
            filter("stack", "stack", &query.stack);
            filter("type", "ty", &query.type_);
            if !query.types_any.is_empty() {
                names.insert("#tya".to_owned(), "type".to_owned());
                let mut alts = Vec::new();
                for (i, t) in query.types_any.iter().enumerate() {
                    values.insert(format!(":tya{i}"), s(t));
                    alts.push(format!(":tya{i}"));
                }
                filters.push(format!("#tya IN ({})", alts.join(", ")));
            }
            let mut request = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression(key)
                .set_expression_attribute_values(Some(values))
                .set_exclusive_start_key(start.take());
            if !names.is_empty() {
                request = request.set_expression_attribute_names(Some(names));
            }
            if !filters.is_empty() {
                request = request.filter_expression(filters.join(" AND "));
            }
            if query.newest_first {
                request = request.scan_index_forward(false);
            }
            let page = request
                .send()
                .await
                .map_err(|e| TableError::of(&e, &self.name))?;
            items.extend(page.items().iter().cloned());
            if query.limit.is_some_and(|n| items.len() >= n) {
                items.truncate(query.limit.unwrap_or(usize::MAX));
                break;
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(items)
    }
}

/// What to read back (`None` fields do not filter).
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Sort keys from this one on (a timestamp prefix works: `2025-10-09T14`).
    pub since: Option<String>,
    pub environment: Option<String>,
    pub run_id: Option<String>,
    pub stack: Option<String>,
    pub type_: Option<String>,
    /// Any of these types.
    pub types_any: Vec<String>,
    pub newest_first: bool,
    /// Stop after this many items.
    pub limit: Option<usize>,
}

/// What a write did.
#[derive(Debug, Default)]
pub struct Written {
    pub written: usize,
    /// Items not written (to spool).
    pub left: Vec<Item>,
    /// Throttled or partly unprocessed answers that were retried.
    pub retries: u64,
    pub trouble: Option<Trouble>,
    /// Some items are in neither `written` nor `left` (a write crashed).
    pub lost_track: bool,
}

impl Written {
    pub fn absorb(&mut self, other: Written) {
        self.written += other.written;
        self.left.extend(other.left);
        self.retries += other.retries;
        self.lost_track |= other.lost_track;
        if self.trouble.is_none() {
            self.trouble = other.trouble;
        }
    }
}

/// Why writing stopped before every item was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// The table could not be reached (connection refused, timeouts): try again later.
    Unreachable(String),
    /// The table said no (it does not exist, no permission): trying again will not help
    /// until someone acts.
    Refused(String),
}

impl Trouble {
    pub fn message(&self) -> &str {
        match self {
            Trouble::Unreachable(m) | Trouble::Refused(m) => m,
        }
    }
}

enum Kind {
    Throttled,
    Unreachable,
    Invalid,
    Refused,
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

/// Worth another try: throttling, a 5xx, no answer, or an answer that is not DynamoDB's.
pub(crate) fn is_transient<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(classify(e), Kind::Throttled | Kind::Unreachable)
}

fn classify<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> Kind {
    match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Kind::Unreachable,
        // A reply that is not DynamoDB's (a proxy's error page, a cut connection).
        SdkError::ResponseError(_) => Kind::Throttled,
        SdkError::ServiceError(s) => match s.err().code() {
            Some(
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "LimitExceededException",
            ) => Kind::Throttled,
            Some("ValidationException" | "ItemCollectionSizeLimitExceededException") => {
                Kind::Invalid
            }
            _ if s.raw().status().is_server_error() => Kind::Throttled,
            _ => Kind::Refused,
        },
        _ => Kind::Refused,
    }
}

/// An SDK error in words, with the fix where there is one.
pub fn describe<E>(e: &SdkError<E, HttpResponse>, table: &str) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .map(|u| format!(" at {u}"))
                .unwrap_or_default();
            format!(
                "DynamoDB{endpoint} cannot be reached ({})",
                error_chain(e).unwrap_or_else(|| "no answer".into())
            )
        }
        SdkError::ServiceError(s) => {
            let err = s.err();
            let text = err.message().unwrap_or("").to_owned();
            match err.code() {
                Some("ResourceNotFoundException") => format!(
                    "DynamoDB table `{table}` does not exist ({text}); create it with \
                     `cloud events init-table --dynamodb-table {table}`"
                ),
                Some(c) => format!("DynamoDB refused: {c}: {text}"),
                None => format!(
                    "DynamoDB answered HTTP {}: {text}",
                    s.raw().status().as_u16()
                ),
            }
        }
        other => format!(
            "DynamoDB request failed: {}",
            error_chain(other).unwrap_or_else(|| other.to_string())
        ),
    }
}

/// The innermost causes of an error, joined: the SDK's top-level message alone
/// ("dispatch failure") does not say what happened.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        cur = c.source();
    }
    (!parts.is_empty()).then(|| parts.join(": "))
}

/// Waits 2^attempt × 50 ms (at most 5 s), the upper half of it at random, and never past
/// `until`.
async fn backoff(attempt: u32, until: Option<Instant>) {
    let cap = Duration::from_millis(50)
        .saturating_mul(1 << attempt.min(7))
        .min(Duration::from_secs(5));
    let wait = cap / 2 + cap.mul_f64(jitter() / 2.0);
    let wait = match until {
        Some(u) => wait.min(u.saturating_duration_since(Instant::now())),
        None => wait,
    };
    tokio::time::sleep(wait).await;
}

/// A number in [0, 1): xorshift over the clock and a per-thread counter (no `rand` crate for
/// one jitter).
fn jitter() -> f64 {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u64> = const { Cell::new(0) });
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
                | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn put(item: Item) -> Option<WriteRequest> {
    let put = PutRequest::builder().set_item(Some(item)).build().ok()?;
    Some(WriteRequest::builder().put_request(put).build())
}

fn item_of(request: WriteRequest) -> Option<Item> {
    request.put_request.map(|p| p.item)
}

/// The sort key of an event: unique per event, equal for the same event written twice.
pub fn sort_key(event: &Event, run_id: &str) -> String {
    format!(
        "{}#{run_id}#{:010}",
        format_timestamp(&event.timestamp),
        event.sequence
    )
}

/// The item of one event of run `run_id`, by `user`. `data` over DynamoDB's limit is cut,
/// longest strings first, each cut marked (see [`truncate`]).
pub fn item(event: &Event, run_id: &str, user: Option<&str>) -> Item {
    // Built through its JSON form, so that the spool (which keeps that form) and the table
    // can never disagree about an item.
    let json = item_json(event, run_id, user);
    json.as_object()
        .map(|map| map.iter().map(|(k, v)| (k.clone(), attr(v))).collect())
        .unwrap_or_default()
}

/// The item of an event in its JSON form (the spool's line): cheaper to write than going
/// through [`AttributeValue`]s, which matters when a whole run's backlog is spooled at the end.
pub fn item_json(event: &Event, run_id: &str, user: Option<&str>) -> serde_json::Value {
    use serde_json::Value as J;
    let mut envelope = serde_json::to_value(event).unwrap_or_default();
    let mut data = envelope
        .get_mut("data")
        .map(serde_json::Value::take)
        .unwrap_or_default();
    let truncated = truncate(&mut data, DATA_BUDGET);
    let mut item = serde_json::Map::new();
    item.insert("deploymentId".into(), J::from(event.deployment_id.as_str()));
    item.insert("timestamp".into(), J::from(sort_key(event, run_id)));
    item.insert("type".into(), J::from(event.data.type_name()));
    item.insert("environment".into(), J::from(event.environment.as_str()));
    if let Some(stack) = event.data.stack() {
        item.insert("stack".into(), J::from(stack));
    }
    item.insert("runId".into(), J::from(run_id));
    if let Some(user) = user {
        item.insert("user".into(), J::from(user));
    }
    item.insert("sequence".into(), J::from(event.sequence));
    item.insert("data".into(), data);
    if truncated {
        item.insert("truncated".into(), J::Bool(true));
    }
    J::Object(item)
}

/// An item DynamoDB refused as it was (a number out of its range, say): `data` kept as JSON
/// text, cut to fit, with why.
fn unstorable(mut item: Item, why: &str) -> Item {
    let text = item
        .remove("data")
        .map(|d| json(&d).to_string())
        .unwrap_or_default();
    let mut data = serde_json::json!({ "json": text, "unstorable": why });
    truncate(&mut data, DATA_BUDGET);
    item.insert("data".into(), attr(&data));
    item.insert("unstorable".into(), AttributeValue::Bool(true));
    item
}

/// Cuts the longest strings of `value` until it fits in `budget` bytes as DynamoDB counts
/// them ([`size`]), each cut ending with `… [truncated by cloud: N bytes, the first M kept]`.
/// A value still too big after that (thousands of small strings) is replaced by the start of
/// its JSON text, marked the same way. `true` when anything was cut.
pub fn truncate(value: &mut serde_json::Value, budget: usize) -> bool {
    let mut now = size(value);
    if now <= budget {
        return false;
    }
    for _ in 0..64 {
        let over = now - budget;
        let Some(longest) = longest_string(value) else {
            break;
        };
        let len = longest.len();
        if len < 1024 {
            break;
        }
        // The marker takes room too: cut a little more than the excess.
        let keep = len.saturating_sub(over + 128).max(256).min(len);
        let mut cut = keep;
        while !longest.is_char_boundary(cut) {
            cut -= 1;
        }
        longest.truncate(cut);
        longest.push_str(&format!(
            "… {TRUNCATED_MARKER} {len} bytes, the first {cut} kept]"
        ));
        now = size(value);
        if now <= budget {
            return true;
        }
    }
    let text = value.to_string();
    let mut cut = (budget / 2).min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let keep = |key: &str| value.get(key).cloned();
    let mut replaced = serde_json::Map::new();
    for key in ["deploymentId", "environment", "stack"] {
        if let Some(v) = keep(key) {
            replaced.insert(key.into(), v);
        }
    }
    replaced.insert(
        "truncated".into(),
        serde_json::Value::String(format!(
            "{}… {TRUNCATED_MARKER} {} bytes of JSON, the first {cut} kept]",
            &text[..cut],
            text.len()
        )),
    );
    *value = serde_json::Value::Object(replaced);
    true
}

/// The size of a value as DynamoDB counts it (UTF-8 bytes of names and strings, up to 21
/// bytes a number, a few bytes of overhead per list or map element), rounded up.
pub fn size(value: &serde_json::Value) -> usize {
    use serde_json::Value as J;
    match value {
        J::Null | J::Bool(_) => 1,
        J::Number(_) => 21,
        J::String(s) => s.len() + 1,
        J::Array(items) => 3 + items.iter().map(|v| 1 + size(v)).sum::<usize>(),
        J::Object(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + size(v))
                .sum::<usize>()
        }
    }
}

fn longest_string(value: &mut serde_json::Value) -> Option<&mut String> {
    use serde_json::Value as J;
    match value {
        J::String(s) => Some(s),
        J::Array(items) => items
            .iter_mut()
            .filter_map(longest_string)
            .max_by_key(|s| s.len()),
        J::Object(map) => map
            .values_mut()
            .filter_map(longest_string)
            .max_by_key(|s| s.len()),
        _ => None,
    }
}

/// JSON as a DynamoDB value. Numbers DynamoDB cannot hold (beyond ±1e125, or too small) are
/// kept as their text.
pub fn attr(value: &serde_json::Value) -> AttributeValue {
    use serde_json::Value as J;
    match value {
        J::Null => AttributeValue::Null(true),
        J::Bool(b) => AttributeValue::Bool(*b),
        J::Number(n) => {
            let fits = n
                .as_f64()
                .is_none_or(|f| f == 0.0 || (1e-129..1e125).contains(&f.abs()));
            if fits {
                AttributeValue::N(n.to_string())
            } else {
                AttributeValue::S(n.to_string())
            }
        }
        J::String(s) => AttributeValue::S(s.clone()),
        J::Array(items) => AttributeValue::L(items.iter().map(attr).collect()),
        J::Object(map) => {
            AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), attr(v))).collect())
        }
    }
}

/// A DynamoDB value as JSON.
pub fn json(value: &AttributeValue) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        AttributeValue::S(s) => J::String(s.clone()),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(J::from)
            .or_else(|_| n.parse::<u64>().map(J::from))
            .ok()
            .or_else(|| {
                n.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(J::Number)
            })
            .unwrap_or_else(|| J::String(n.clone())),
        AttributeValue::Bool(b) => J::Bool(*b),
        AttributeValue::Null(_) => J::Null,
        AttributeValue::L(items) => J::Array(items.iter().map(json).collect()),
        AttributeValue::M(map) => {
            J::Object(map.iter().map(|(k, v)| (k.clone(), json(v))).collect())
        }
        AttributeValue::Ss(v) => J::Array(v.iter().cloned().map(J::String).collect()),
        AttributeValue::Ns(v) => J::Array(v.iter().cloned().map(J::String).collect()),
        _ => J::Null,
    }
}

/// An item as one JSON object (the spool's line form; [`item_from_json`] reverses it).
pub fn item_to_json(item: &Item) -> serde_json::Value {
    serde_json::Value::Object(item.iter().map(|(k, v)| (k.clone(), json(v))).collect())
}

pub fn item_from_json(value: &serde_json::Value) -> Option<Item> {
    let map = value.as_object()?;
    let item: Item = map.iter().map(|(k, v)| (k.clone(), attr(v))).collect();
    (item.contains_key("deploymentId") && item.contains_key("timestamp")).then_some(item)
}

/// An event read back: the envelope as it was emitted, with who ran it in which run.
#[derive(Debug, Clone)]
pub struct Stored {
    /// `{"type","timestamp","sequence","data"}`, as in the journal.
    pub envelope: serde_json::Value,
    pub run_id: String,
    pub user: Option<String>,
    /// Cut to fit (or kept as text).
    pub truncated: bool,
}

impl Stored {
    pub fn from_item(item: &Item) -> Option<Stored> {
        let text = |k: &str| match item.get(k) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        let key = text("timestamp")?;
        let timestamp = key.split('#').next().unwrap_or_default().to_owned();
        let sequence = match item.get("sequence") {
            Some(AttributeValue::N(n)) => n.parse::<u64>().ok()?,
            _ => return None,
        };
        let data = item.get("data").map(json).unwrap_or_default();
        Some(Stored {
            envelope: serde_json::json!({
                "type": text("type")?,
                "timestamp": timestamp,
                "sequence": sequence,
                "data": data,
            }),
            run_id: text("runId").unwrap_or_default(),
            user: text("user"),
            truncated: item.contains_key("truncated") || item.contains_key("unstorable"),
        })
    }

    /// The typed event (`None` for an item whose data was cut beyond reading).
    pub fn event(&self) -> Option<Event> {
        serde_json::from_value(self.envelope.clone()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn log(message: String, sequence: u64) -> Event {
        Event {
            timestamp: "2025-10-09T14:30:00.123Z".parse().unwrap(),
            ..testing::event(sequence, testing::log("app", &message))
        }
    }

    #[test]
    fn keys_are_unique_per_event_and_stable() {
        let a = item(&log("x".into(), 1), "r1", Some("ann"));
        let b = item(&log("x".into(), 2), "r1", Some("ann"));
        let c = item(&log("x".into(), 1), "r2", Some("ann"));
        assert_ne!(a["timestamp"], b["timestamp"]);
        assert_ne!(a["timestamp"], c["timestamp"]);
        assert_eq!(a, item(&log("x".into(), 1), "r1", Some("ann")));
        assert_eq!(a["timestamp"], s("2025-10-09T14:30:00.123Z#r1#0000000001"));
    }

    #[test]
    fn a_megabyte_message_is_cut_with_a_marker() {
        let event = log("y".repeat(1 << 20), 3);
        let i = item(&event, "r", None);
        assert_eq!(i.get("truncated"), Some(&AttributeValue::Bool(true)));
        let back = Stored::from_item(&i).unwrap();
        let message = back.envelope["data"]["message"].as_str().unwrap();
        assert!(message.len() < DATA_BUDGET, "{}", message.len());
        assert!(
            message.contains(TRUNCATED_MARKER),
            "{}",
            &message[message.len() - 80..]
        );
        assert!(message.contains("1048576 bytes"));
        let again = back.event().expect("still an event");
        assert_eq!(again.sequence, 3);
    }

    #[test]
    fn items_round_trip_through_json() {
        let i = item(&log("hello".into(), 9), "r", Some("u"));
        let back = item_from_json(&item_to_json(&i)).unwrap();
        assert_eq!(i, back);
        let stored = Stored::from_item(&back).unwrap();
        assert_eq!(stored.event().unwrap(), log("hello".into(), 9));
        assert_eq!(stored.user.as_deref(), Some("u"));
    }

    #[test]
    fn many_small_strings_still_fit() {
        let mut v = serde_json::json!({"deploymentId": "D", "environment": "e",
            "outputs": (0..50_000).map(|i| (format!("k{i}"), serde_json::json!("v".repeat(20)))).collect::<serde_json::Map<_,_>>()});
        assert!(truncate(&mut v, DATA_BUDGET));
        assert!(size(&v) <= DATA_BUDGET);
        assert!(v["truncated"].as_str().unwrap().contains(TRUNCATED_MARKER));
        assert_eq!(v["deploymentId"], "D");
    }
}
