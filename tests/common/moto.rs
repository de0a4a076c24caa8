//! A real `moto_server` for the tests that talk to DynamoDB and CloudWatch Logs (`.ci/run`
//! starts it and exports `AWS_ENDPOINT_URL`; default http://127.0.0.1:5000).

use std::net::{SocketAddr, TcpStream};
use std::sync::Once;
use std::time::Duration;

use cloud::store::dynamodb::{Table, Target};

const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:5000";

/// moto's endpoint, or `None` (test skipped) when it is not running outside CI.
pub fn moto() -> Option<String> {
    let url = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| DEFAULT_ENDPOINT.into());
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let up = addr
        .parse::<SocketAddr>()
        .ok()
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if up {
        static ENV: Once = Once::new();
        // Every test of this file uses the same values; the library reads them.
        ENV.call_once(|| {
            std::env::set_var("AWS_ENDPOINT_URL", &url);
            std::env::set_var("AWS_ACCESS_KEY_ID", "test");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
            std::env::set_var("AWS_REGION", "us-east-1");
        });
        return Some(url);
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "moto_server is not running at {url}: .ci/run starts it (pip install 'moto[server]'; \
         moto_server -H 127.0.0.1 -p 5000)"
    );
    eprintln!(
        "SKIPPED: moto_server is not running at {url} (start it: moto_server -H 127.0.0.1 -p 5000)"
    );
    None
}

/// A table name of its own for each test.
pub fn table_name(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("t-{test}-{}-{nanos}", std::process::id())
}

/// The AWS environment of a `cloud` run against `endpoint` (test credentials, user `ann`).
pub fn aws_vars(endpoint: &str) -> [(&'static str, String); 5] {
    [
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("CLOUD_USER", "ann".into()),
    ]
}

/// Variables of the developer's own AWS setup that must not leak into a test run.
pub const AWS_CLEARED: [&str; 2] = ["AWS_PROFILE", "CLOUD_DYNAMODB_TABLE"];

/// [`aws_vars`] on a `std::process::Command` (a run spawned in the background).
pub fn aws_env(cmd: &mut std::process::Command, endpoint: &str) {
    cmd.envs(aws_vars(endpoint));
    for var in AWS_CLEARED {
        cmd.env_remove(var);
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub fn create_table(name: &str) -> Table {
    let rt = rt();
    let table = rt
        .block_on(Table::connect(&Target {
            table: name.into(),
            region: None,
        }))
        .unwrap();
    assert!(rt.block_on(table.create()).unwrap());
    table
}
