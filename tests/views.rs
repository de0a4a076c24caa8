//! The simple and the interactive views, rendered from models built by folding synthetic events.
//! Every render gets a fixed `now`, so the snapshots hold no moving times.

mod common;

use chrono::{DateTime, FixedOffset, Utc};
use cloud::event::*;
use cloud::progress::Model;
use cloud::testing::{at, RunBuilder};
use cloud::view::interactive::{self, Action, Look, Ui};
use cloud::view::simple::{self, Options, Simple};
use cloud::view::Palette;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const RDS: &str = "aws:rds/instance:Instance";

/// The seed's picture: layer 3 of 5 running, database-rds creating its instance.
fn mid_deploy() -> RunBuilder {
    let mut run = RunBuilder::start(&[
        ("network", 1, &[], 120.0, 8),
        ("security", 2, &["network"], 90.0, 5),
        ("secrets", 2, &["network"], 45.0, 3),
        ("dns", 2, &["network"], 60.0, 4),
        ("database-rds", 3, &["network", "security"], 105.0, 4),
        ("storage", 3, &["security"], 45.0, 3),
        ("cache", 3, &["network"], 30.0, 2),
        ("compute", 4, &["database-rds"], 120.0, 6),
        ("queue", 4, &["storage"], 30.0, 2),
        ("api", 4, &["compute"], 60.0, 4),
        ("frontend", 5, &["api"], 60.0, 3),
        ("monitoring", 5, &["api"], 30.0, 2),
    ]);
    run.at(0.0)
        .layer(1, 5, &["network"])
        .deploying("network", 1)
        .at(5.0)
        .resource(
            "network",
            ResourceState::Creating,
            "main-vpc",
            "aws:ec2/vpc:Vpc",
        )
        .at(10.0)
        .resource(
            "network",
            ResourceState::Created,
            "main-vpc",
            "aws:ec2/vpc:Vpc",
        )
        .at(120.0)
        .deployed("network", 120)
        .layer_done(1)
        .at(125.0)
        .layer(2, 5, &["security", "secrets", "dns"])
        .deploying("security", 2)
        .deploying("secrets", 2)
        .deploying("dns", 2)
        .at(170.0)
        .deployed("secrets", 45)
        .at(185.0)
        .deployed("dns", 60)
        .at(215.0)
        .deployed("security", 90)
        .layer_done(2)
        .at(220.0)
        .layer(3, 5, &["database-rds", "storage", "cache"])
        .skipped("cache")
        .at(285.0)
        .deploying("database-rds", 3)
        .resource(
            "database-rds",
            ResourceState::Creating,
            "subnet-group",
            "aws:rds/subnetGroup:SubnetGroup",
        )
        .at(295.0)
        .resource(
            "database-rds",
            ResourceState::Created,
            "subnet-group",
            "aws:rds/subnetGroup:SubnetGroup",
        )
        .resource(
            "database-rds",
            ResourceState::Creating,
            "parameter-group",
            "aws:rds/parameterGroup:ParameterGroup",
        )
        .log("database-rds", LogLevel::Info, "Creating subnet group...")
        .at(300.0)
        .resource(
            "database-rds",
            ResourceState::Created,
            "parameter-group",
            "aws:rds/parameterGroup:ParameterGroup",
        )
        .resource(
            "database-rds",
            ResourceState::Creating,
            "main-database",
            RDS,
        )
        .progress("database-rds", 50, "Creating RDS instance...")
        .log("database-rds", LogLevel::Warn, "this may take 5-10 minutes")
        .eta();
    run
}

fn at_330() -> DateTime<Utc> {
    at(330.0)
}

/// network fails; everything behind it is blocked; the independent `audit` still deploys.
fn failure() -> RunBuilder {
    let mut run = RunBuilder::start(&[
        ("network", 1, &[], 20.0, 3),
        ("audit", 1, &[], 10.0, 1),
        ("security", 2, &["network"], 30.0, 2),
        ("database", 3, &["security"], 60.0, 2),
        ("app", 3, &["security"], 30.0, 2),
    ]);
    run.at(0.0)
        .layer(1, 3, &["network", "audit"])
        .deploying("network", 1)
        .deploying("audit", 1)
        .resource(
            "network",
            ResourceState::Creating,
            "main-vpc",
            "aws:ec2/vpc:Vpc",
        )
        .at(5.0)
        .resource(
            "network",
            ResourceState::Created,
            "main-vpc",
            "aws:ec2/vpc:Vpc",
        )
        .resource(
            "network",
            ResourceState::Creating,
            "public-subnet-0",
            "aws:ec2/subnet:Subnet",
        )
        .at(10.0)
        .deployed("audit", 10)
        .at(12.0)
        .resource(
            "network",
            ResourceState::Failed,
            "public-subnet-0",
            "aws:ec2/subnet:Subnet",
        )
        .failed("network", 12)
        .blocked("security", "network")
        .blocked("database", "network")
        .blocked("app", "network")
        .layer_done(1);
    run
}

fn failure_complete() -> RunBuilder {
    let mut run = failure();
    run.at(12.0).complete(DeploymentState::Failed, 12);
    run
}

/// A re-run where most stacks are unchanged.
fn skipped() -> RunBuilder {
    let mut run = RunBuilder::start(&[
        ("network", 1, &[], 20.0, 3),
        ("security", 2, &["network"], 30.0, 2),
        ("secrets", 2, &["network"], 30.0, 2),
        ("app", 3, &["security", "secrets"], 30.0, 2),
    ]);
    run.at(0.0)
        .layer(1, 3, &["network"])
        .skipped("network")
        .layer_done(1)
        .layer(2, 3, &["security", "secrets"])
        .skipped("security")
        .deploying("secrets", 2)
        .at(30.0)
        .deployed("secrets", 30)
        .layer_done(2)
        .layer(3, 3, &["app"])
        .deploying("app", 3)
        .at(61.0)
        .deployed("app", 31)
        .layer_done(3)
        .complete(DeploymentState::Deployed, 61);
    run
}

/// 1,000 stacks in 10 layers of 100; layer 1 done, 4 of layer 2 running.
fn thousand() -> RunBuilder {
    let names: Vec<String> = (0..1000).map(|i| format!("stack-{i:04}")).collect();
    let plan: Vec<(&str, u32, &[&str], f64, u32)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32 / 100 + 1, &[][..], 10.0, 2))
        .collect();
    let mut run = RunBuilder::start(&plan);
    let layer1: Vec<&str> = names[..100].iter().map(String::as_str).collect();
    run.at(0.0).layer(1, 10, &layer1);
    for (i, name) in layer1.iter().enumerate() {
        run.at(i as f64)
            .deploying(name, 1)
            .at(i as f64 + 10.0)
            .deployed(name, 10);
    }
    run.layer_done(1);
    let layer2: Vec<&str> = names[100..200].iter().map(String::as_str).collect();
    run.at(110.0).layer(2, 10, &layer2);
    for name in &layer2[..4] {
        run.deploying(name, 2).resource(
            name,
            ResourceState::Creating,
            "bucket",
            "aws:s3/bucket:Bucket",
        );
    }
    run.eta();
    run
}

fn plain(width: usize, height: usize) -> Options {
    Options {
        width,
        height,
        palette: Palette { enabled: false },
    }
}

fn tui(model: &Model, ui: &mut Ui, now: DateTime<Utc>, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let look = Look {
        color: false,
        offset: FixedOffset::east_opt(0).unwrap(),
    };
    terminal
        .draw(|f| interactive::draw(f, Some(model), ui, now, &look))
        .unwrap();
    terminal.backend().to_string()
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

// ---- simple view ----

#[test]
fn simple_mid_deploy() {
    let model = mid_deploy().model();
    let text = simple::screen(&model, at_330(), &plain(100, 40));
    assert!(
        text.contains("Layer 3/5: database-rds, storage, cache"),
        "{text}"
    );
    assert!(
        text.contains("→ database-rds (45s elapsed, ~1m remaining)"),
        "{text}"
    );
    assert!(text.contains("Progress: "), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn simple_mid_deploy_narrow() {
    let model = mid_deploy().model();
    insta::assert_snapshot!(simple::screen(&model, at_330(), &plain(60, 20)));
}

#[test]
fn simple_failure() {
    let model = failure_complete().model();
    let mut view = Simple::new();
    let lines = view.finish(&model, at(12.0), &plain(80, 24)).join("\n");
    assert!(lines.contains("✗ network (12s)"), "{lines}");
    assert!(lines.contains("⊘ database (blocked by network)"), "{lines}");
    insta::assert_snapshot!(lines);
}

#[test]
fn simple_skipped() {
    let model = skipped().model();
    let lines = Simple::new()
        .finish(&model, at(61.0), &plain(80, 24))
        .join("\n");
    assert!(lines.contains("↷ network (skipped: unchanged)"), "{lines}");
    insta::assert_snapshot!(lines);
}

#[test]
fn simple_thousand_stacks_fit_the_screen() {
    let model = thousand().model();
    let frame = Simple::new().frame(&model, at(115.0), &plain(80, 24));
    assert!(frame.live.len() <= 24, "{} live lines", frame.live.len());
    // Layer 1 is done: it went to scrollback, in full.
    assert_eq!(
        frame
            .scrollback
            .iter()
            .filter(|l| l.contains("✓ stack-"))
            .count(),
        100
    );
    insta::assert_snapshot!(frame.live.join("\n"));
}

#[test]
fn simple_prints_each_layer_to_scrollback_once() {
    let mut run = mid_deploy();
    let mut view = Simple::new();
    let opts = plain(80, 24);
    let first = view.frame(&run.model(), at_330(), &opts);
    assert!(first.scrollback[0].starts_with("Deploying D1BRV40-dev..."));
    assert!(first.scrollback.iter().any(|l| l.starts_with("Layer 2/5")));
    let again = view.frame(&run.model(), at_330(), &opts);
    assert!(again.scrollback.is_empty(), "{:?}", again.scrollback);
    run.at(340.0)
        .deploying("storage", 3)
        .deployed("storage", 1)
        .resource("database-rds", ResourceState::Created, "main-database", RDS)
        .deployed("database-rds", 60)
        .layer_done(3);
    let next = view.frame(&run.model(), at(340.0), &opts);
    assert!(
        next.scrollback[0].starts_with("Layer 3/5"),
        "{:?}",
        next.scrollback
    );
    assert!(!next.live.iter().any(|l| l.starts_with("Layer 3/5")));
}

#[test]
fn simple_lines_never_exceed_the_width() {
    let model = thousand().model();
    let frame = Simple::new().frame(&model, at(115.0), &plain(40, 10));
    for line in frame.scrollback.iter().chain(&frame.live) {
        assert!(console::measure_text_width(line) <= 40, "{line}");
    }
    assert!(frame.live.len() <= 10);
}

// ---- interactive view ----

#[test]
fn tui_mid_deploy_80x24() {
    let model = mid_deploy().model();
    let mut ui = Ui::default();
    let screen = tui(&model, &mut ui, at_330(), 80, 24);
    assert!(
        screen.contains("45% (5/12 stacks: 4 deployed, 1 skipped)"),
        "{screen}"
    );
    assert!(screen.contains("├─ subnet-group"), "{screen}");
    assert!(screen.contains("Smart Skip: 1 stack"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn tui_mid_deploy_120x40() {
    let model = mid_deploy().model();
    insta::assert_snapshot!(tui(&model, &mut Ui::default(), at_330(), 120, 40));
}

#[test]
fn tui_narrow_60x20() {
    let model = mid_deploy().model();
    insta::assert_snapshot!(tui(&model, &mut Ui::default(), at_330(), 60, 20));
}

#[test]
fn tui_failure_shows_the_error_and_blocked_dependents() {
    let model = failure_complete().model();
    let mut ui = Ui::default();
    let screen = tui(&model, &mut ui, at(12.0), 80, 24);
    assert!(screen.contains("INSUFFICIENT_PERMISSIONS"), "{screen}");
    assert!(screen.contains("blocked by network"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn tui_skipped() {
    let model = skipped().model();
    let mut ui = Ui::default();
    let screen = tui(&model, &mut ui, at(61.0), 80, 24);
    assert!(screen.contains("Smart Skip: 2 stacks"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn tui_thousand_stacks() {
    let model = thousand().model();
    let mut ui = Ui::default();
    let screen = tui(&model, &mut ui, at(115.0), 80, 24);
    assert!(screen.contains("of 1000"), "{screen}");
    insta::assert_snapshot!(screen);
    // At the end of the list, the selection stays on screen.
    ui.handle_key(key(KeyCode::End), Some(&model));
    let screen = tui(&model, &mut ui, at(115.0), 80, 24);
    // The last of the list: the last finished stack, pending ones being above it.
    assert!(screen.contains("▸✓ stack-0099"), "{screen}");
    assert!(screen.contains("of 1000"), "{screen}");
}

#[test]
fn tui_expanded_details_and_dialogs() {
    let model = mid_deploy().model();
    let mut ui = Ui::default();
    ui.handle_key(key(KeyCode::Enter), Some(&model));
    insta::assert_snapshot!("tui_expanded", tui(&model, &mut ui, at_330(), 80, 24));
    ui.handle_key(key(KeyCode::Char('?')), Some(&model));
    insta::assert_snapshot!("tui_help", tui(&model, &mut ui, at_330(), 80, 24));
    ui.handle_key(key(KeyCode::Esc), Some(&model));
    ui.handle_key(key(KeyCode::Char('q')), Some(&model));
    insta::assert_snapshot!("tui_confirm", tui(&model, &mut ui, at_330(), 80, 24));
}

// ---- interactive state transitions, no drawing ----

fn names(model: &Model) -> Vec<&str> {
    interactive::order(model)
        .into_iter()
        .map(|i| model.stacks[i].name.as_str())
        .collect()
}

#[test]
fn running_stacks_are_pinned_on_top_and_failed_next() {
    let model = mid_deploy().model();
    assert_eq!(names(&model)[0], "database-rds");
    let model = failure().model();
    assert_eq!(
        names(&model),
        ["network", "audit", "security", "database", "app"]
    );
}

#[test]
fn selection_follows_the_current_stack_until_moved() {
    let model = mid_deploy().model();
    let mut ui = Ui::default();
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('j')), Some(&model)),
        Action::Redraw
    );
    assert!(!ui.follow);
    // From database-rds (running, first) one down: storage, the first pending one in plan order.
    assert_eq!(model.stacks[ui.selected.unwrap()].name, "storage");
    ui.handle_key(key(KeyCode::Down), Some(&model));
    assert_eq!(model.stacks[ui.selected.unwrap()].name, "compute");
    ui.handle_key(key(KeyCode::Char('k')), Some(&model));
    ui.handle_key(key(KeyCode::Up), Some(&model));
    ui.handle_key(key(KeyCode::Up), Some(&model));
    assert_eq!(model.stacks[ui.selected.unwrap()].name, "database-rds");
    ui.handle_key(key(KeyCode::End), Some(&model));
    // The last finished one.
    assert_eq!(model.stacks[ui.selected.unwrap()].name, "cache");
    ui.handle_key(key(KeyCode::Char('f')), Some(&model));
    assert!(ui.follow);
    assert_eq!(model.stacks[ui.selected.unwrap()].name, "database-rds");
}

#[test]
fn paging_scrolls_the_list_and_keeps_the_selection_visible() {
    let model = thousand().model();
    let mut ui = Ui {
        list_rows: 10,
        ..Ui::default()
    };
    ui.handle_key(key(KeyCode::Home), Some(&model));
    ui.handle_key(key(KeyCode::PageDown), Some(&model));
    let order = interactive::order(&model);
    let pos = order.iter().position(|&i| Some(i) == ui.selected).unwrap();
    assert_eq!(pos, 9);
    assert_eq!(ui.offset, 0);
    ui.handle_key(key(KeyCode::PageDown), Some(&model));
    let pos = order.iter().position(|&i| Some(i) == ui.selected).unwrap();
    assert_eq!(pos, 18);
    assert_eq!(ui.offset, 9);
    ui.handle_key(key(KeyCode::End), Some(&model));
    assert_eq!(ui.offset, 990);
    ui.handle_key(key(KeyCode::Home), Some(&model));
    assert_eq!(ui.offset, 0);
}

#[test]
fn enter_expands_and_pages_scroll_the_details() {
    let model = mid_deploy().model();
    let mut ui = Ui {
        detail_rows: 5,
        ..Ui::default()
    };
    ui.handle_key(key(KeyCode::Enter), Some(&model));
    assert!(ui.expanded);
    ui.handle_key(key(KeyCode::PageDown), Some(&model));
    assert_eq!(ui.detail_scroll, 4);
    ui.handle_key(key(KeyCode::PageUp), Some(&model));
    assert_eq!(ui.detail_scroll, 0);
    ui.handle_key(key(KeyCode::Char('l')), Some(&model));
    assert!(!ui.show_logs);
    ui.handle_key(key(KeyCode::Esc), Some(&model));
    assert!(!ui.expanded);
}

#[test]
fn quitting_a_running_deploy_asks_first() {
    let model = mid_deploy().model();
    let mut ui = Ui::default();
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('q')), Some(&model)),
        Action::Redraw
    );
    assert!(ui.confirm);
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('n')), Some(&model)),
        Action::Redraw
    );
    assert!(!ui.confirm);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    ui.handle_key(ctrl_c, Some(&model));
    assert!(ui.confirm);
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('y')), Some(&model)),
        Action::Cancel
    );
    assert!(!ui.confirm);
    // Once the run says it is stopping, q does not ask again, and Ctrl-C forces.
    let stopping = mid_deploy()
        .cancelling(StopReason::Interrupt, false)
        .model();
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('q')), Some(&stopping)),
        Action::Redraw
    );
    assert!(!ui.confirm);
    assert_eq!(ui.handle_key(ctrl_c, Some(&stopping)), Action::Force);
    // A lost lock is no stop the user asked for: q still asks.
    let halted = mid_deploy().cancelling(StopReason::LockLost, false).model();
    ui.handle_key(key(KeyCode::Char('q')), Some(&halted));
    assert!(ui.confirm);
}

#[test]
fn a_stop_is_shown_from_the_model_by_every_view() {
    let model = mid_deploy().cancelling(StopReason::Signal, false).model();
    let title = |m: &Model| {
        tui(m, &mut Ui::default(), at_330(), 120, 40)
            .lines()
            .next()
            .unwrap()
            .to_owned()
    };
    assert!(
        title(&model).contains("Cancelling D1BRV40-dev…"),
        "{}",
        title(&model)
    );
    let screen = tui(&model, &mut Ui::default(), at_330(), 160, 40);
    assert!(
        screen.contains("Stopping: 1 stack (database-rds), waiting up to 10s"),
        "{screen}"
    );
    let simple = simple::screen(&model, at_330(), &plain(120, 40));
    assert!(
        simple.contains(
            "Stopping: 1 stack (database-rds), waiting up to 10s (Ctrl-C again to force)"
        ),
        "{simple}"
    );
    let forced = mid_deploy()
        .cancelling(StopReason::Signal, false)
        .cancelling(StopReason::Signal, true)
        .model();
    assert!(simple::screen(&forced, at_330(), &plain(120, 40))
        .contains("Forced: killing 1 stack (database-rds) now"));
    // Without a stop event, none of it.
    let running = mid_deploy().model();
    assert!(title(&running).contains("Deploying D1BRV40-dev..."));
    assert!(!simple::screen(&running, at_330(), &plain(120, 40)).contains("Stopping"));
}

#[test]
fn after_the_run_a_key_leaves_but_browsing_keys_still_browse() {
    let model = skipped().model();
    let mut ui = Ui::default();
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('j')), Some(&model)),
        Action::Redraw
    );
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('?')), Some(&model)),
        Action::Redraw
    );
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('x')), Some(&model)),
        Action::Redraw
    ); // closes help
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('x')), Some(&model)),
        Action::Quit
    );
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('q')), Some(&model)),
        Action::Quit
    );
}

/// `(percent, settled, total)` of a `Progress: 20% (1/5 stacks deployed) | …` line.
fn progress_numbers(line: &str) -> (u32, u32, u32) {
    let rest = &line[line.find("Progress: ").expect(line) + "Progress: ".len()..];
    let (percent, rest) = rest.split_once("% (").expect(line);
    let (settled, rest) = rest.split_once('/').expect(line);
    let total = rest.split_once(" stacks").expect(line).0;
    let n = |t: &str| t.parse::<u32>().expect(line);
    (n(percent), n(settled), n(total))
}

/// Mid-run after a failure: two stacks skipped, one deployed, one failed and the one behind
/// it blocked, one half-way, one waiting. Every view, the file log and the REST status say
/// the same percent, from one definition, and the count says what its stacks are.
#[test]
fn progress_is_one_figure_in_every_view_the_file_log_and_the_rest_status() {
    let mut run = RunBuilder::start(&[
        ("a", 1, &[], 10.0, 1),
        ("b", 1, &[], 10.0, 1),
        ("c", 1, &[], 10.0, 1),
        ("d", 1, &[], 10.0, 2),
        ("e", 1, &[], 10.0, 1),
        ("f", 2, &["e"], 10.0, 1),
        ("g", 2, &["d"], 10.0, 1),
    ]);
    run.at(0.0)
        .layer(1, 2, &["a", "b", "c", "d", "e"])
        .skipped("a")
        .skipped("b")
        .deploying("c", 1)
        .deploying("d", 1)
        .deploying("e", 1)
        .resource("d", ResourceState::Creating, "x", "t:a:A")
        .at(2.0)
        .resource("d", ResourceState::Created, "x", "t:a:A")
        .deployed("c", 2)
        .failed("e", 2)
        .blocked("f", "e");
    let model = run.model();
    let want = "78% (5/7 stacks: 1 deployed, 2 skipped, 1 failed, 1 blocked)";

    let simple = simple::screen(&model, at(3.0), &plain(100, 40));
    assert!(simple.contains(&format!("Progress: {want} |")), "{simple}");
    let screen = tui(&model, &mut Ui::default(), at(3.0), 120, 30);
    assert!(screen.contains(want), "{screen}");
    let progress = Event {
        sequence: 99,
        timestamp: at(3.0),
        deployment_id: "D1BRV40".into(),
        environment: "dev".into(),
        data: EventData::DeploymentProgress(model.progress_event(None)),
    };
    let mut logged = String::new();
    cloud::sink::filelog::line(&progress, &mut logged);
    assert!(logged.contains(&format!("Progress: {want}")), "{logged}");
    let rest = serde_json::to_value(&model).unwrap();
    assert_eq!(rest["summary"]["progressPercent"], 78, "{rest}");
    assert_eq!(rest["summary"]["settledStacks"], 5, "{rest}");
}

#[test]
fn after_a_cancel_the_progress_line_counts_what_settled() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};
    // `q` deploys at once; `a` and `b` are 80% through (4 of 5 resources) when the run is
    // cancelled; `d` and `e` never start.
    let long = "[ { type: \"t:a:A\", name: w, seconds: 0.05 }, { type: \"t:a:A\", name: x, seconds: 0.05 }, \
                { type: \"t:a:A\", name: y, seconds: 0.05 }, { type: \"t:a:A\", name: z, seconds: 0.05 }, \
                { type: \"t:a:A\", name: last, seconds: 600 } ]";
    let p = common::Project::new();
    p.manifest(
        "C1",
        &format!(
            "environments: [dev]\ndefaults: {{ executor: simulate }}\nstacks:\n  \
             q: {{ resources: [ {{ type: \"t:a:A\", name: q, seconds: 0 }} ] }}\n  \
             a: {{ resources: {long} }}\n  b: {{ resources: {long} }}\n  \
             d: {{ dependencies: [a], resources: [] }}\n  e: {{ dependencies: [b], resources: [] }}\n"
        ),
    );
    let mut child = p
        .process()
        .args(["deploy", "C1", "-e", "dev", "--verbose", "--color", "never"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let on_last = |lines: &[String], stack: &str| {
        let creating = format!("[{stack}] Creating: t:a:A (last)");
        lines.iter().any(|l| l.contains(&creating))
    };
    while !(on_last(&lines, "a") && on_last(&lines, "b")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "a and b never reached their last resource:\n{}",
                    lines.join("\n")
                );
            }
        }
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    lines.extend(rx.iter());
    let text = lines.join("\n");
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("Cancelled: C1-dev"), "{text}");
    let last = lines
        .iter()
        .rev()
        .find(|l| l.contains("] Progress: "))
        .unwrap_or_else(|| panic!("no progress line:\n{text}"));
    // The interrupted stacks are settled (failed); the two never started are not.
    assert!(
        last.contains("] Progress: 60% (3/5 stacks: 1 deployed, 2 failed) |"),
        "{text}"
    );
    // A stop leaves no estimate of a run that is not going on.
    assert!(!last.contains("ETA"), "{text}");
    // Every progress line: the percent is at least what the count says is settled.
    for line in lines.iter().filter(|l| l.contains("] Progress: ")) {
        let (percent, done, total) = progress_numbers(line);
        assert!(percent >= done * 100 / total, "{line}");
    }
}

// ---- words: the same phrase wherever a state is said ----

/// Why a stack was skipped reads the same everywhere: in few words on a stack's line (the
/// simple view, the verbose view, the interactive list), in full where there is room (the
/// interactive details, the file log and `cloud events`, the JUnit report).
#[test]
fn a_skip_reads_the_same_in_every_view_log_and_report() {
    use cloud::view::verbose::Verbose;
    for (reason, short, full) in [
        (
            SkipReason::Unchanged,
            "unchanged",
            "unchanged since its last deploy",
        ),
        (SkipReason::NotSelected, "not selected", "not selected"),
    ] {
        let mut run = RunBuilder::start(&[("network", 1, &[], 20.0, 3)]);
        run.at(0.0)
            .layer(1, 1, &["network"])
            .push(EventData::StackSkipped(StackSkipped {
                stack: "network".into(),
                reason,
                outputs: Outputs::new(),
            }))
            .layer_done(1)
            .at(1.0)
            .complete(DeploymentState::Deployed, 1);
        let model = run.model();

        let simple = Simple::new()
            .finish(&model, at(1.0), &plain(80, 24))
            .join("\n");
        assert!(
            simple.contains(&format!("network (skipped: {short})")),
            "{simple}"
        );

        let mut verbose = Verbose::new(Palette { enabled: false });
        let mut folded = Model::new("D1BRV40", "dev");
        let mut said = Vec::new();
        for event in &run.events {
            folded.apply(event);
            said.extend(verbose.lines(&folded, event).into_iter().flatten());
        }
        let said = said.join("\n");
        assert!(
            said.contains(&format!("[network] ↷ Skipped ({short})")),
            "{said}"
        );

        let screen = tui(&model, &mut Ui::default(), at(1.0), 80, 24);
        assert!(screen.contains(&format!("skipped ({short})")), "{screen}");
        assert!(screen.contains(&format!("↷ Skipped ({full})")), "{screen}");

        let skip = run
            .events
            .iter()
            .find(|e| matches!(e.data, EventData::StackSkipped(_)))
            .unwrap();
        let mut logged = String::new();
        cloud::sink::filelog::line(skip, &mut logged);
        assert!(
            logged.contains(&format!("[network] Skipped: {full}\n")),
            "{logged}"
        );

        let junit = cloud::sink::report::junit_xml(&model);
        assert!(
            junit.contains(&format!("<skipped message=\"skipped: {full}\"/>")),
            "{junit}"
        );
    }
}

// ---- the resources in flight ----

/// A Terraform apply: `Refreshing state...` came first, then three resources started. Every
/// view says what is in flight now (the longest-running, and how many more), not the message.
#[test]
fn every_view_shows_the_resources_in_flight_not_a_stale_message() {
    use cloud::view::verbose::Verbose;
    let mut run = RunBuilder::start(&[("dns", 1, &[], 20.0, 3)]);
    let creating =
        |name: &str| cloud::testing::addressed_resource("dns", ResourceState::Creating, name, None);
    run.at(0.0)
        .layer(1, 1, &["dns"])
        .deploying("dns", 1)
        .progress("dns", 5, "Refreshing state...")
        .at(2.0)
        .push(creating("cert"))
        .at(3.0)
        .push(creating("zone"))
        .push(creating("record"));
    let model = run.model();
    let now = at(8.0);
    let want = "creating terraform_data.cert (6s) +2 more";

    let simple = simple::screen(&model, now, &plain(100, 30));
    assert!(simple.contains(&format!("    {want}")), "{simple}");
    assert!(!simple.contains("Refreshing state"), "{simple}");

    let screen = tui(&model, &mut Ui::default(), now, 120, 30);
    let row = screen.lines().find(|l| l.contains(" dns ")).unwrap();
    assert!(row.contains(want), "{screen}");

    let mut verbose = Verbose::new(Palette { enabled: false });
    let mut folded = Model::new("D1BRV40", "dev");
    let mut said = Vec::new();
    for event in &run.events {
        folded.apply(event);
        said.extend(verbose.lines(&folded, event).into_iter().flatten());
    }
    let said = said.join("\n");
    assert!(
        said.contains("Creating: terraform_data.record (3 in flight)"),
        "{said}"
    );
}

// ---- the ETA ----

/// Mid-run, whenever it is read: the run's ETA is never below what a running stack has left
/// (the run cannot end before it), and the interactive footer never says `~0s`.
#[test]
fn the_runs_eta_is_never_below_a_running_stacks_and_never_zero_mid_run() {
    let model = mid_deploy().model();
    let rds = model.stack("database-rds").unwrap();
    for secs in (300..3000).step_by(7) {
        let now = at(secs as f64);
        let left = model.stack_left(rds, now).unwrap();
        let eta = model.eta(now).unwrap();
        assert!(
            eta >= left.max(1),
            "at {secs}s: the run {eta}s, a stack {left}s"
        );
    }
    let screen = tui(&model, &mut Ui::default(), at(2000.0), 120, 40);
    let footer = screen
        .lines()
        .rev()
        .find(|l| l.contains("Elapsed:"))
        .unwrap();
    assert!(footer.contains("ETA: ~"), "{screen}");
    assert!(!footer.contains("ETA: ~0s"), "{screen}");
}

/// A skipped stack of a layer is said to be skipped where the layer opens, never queued.
#[test]
fn verbose_says_a_skipped_stack_is_skipped_not_queued() {
    use cloud::view::verbose::Verbose;
    let mut run = RunBuilder::start(&[
        ("database-rds", 1, &[], 10.0, 1),
        ("storage", 1, &[], 10.0, 1),
    ]);
    run.at(0.0)
        .layer(1, 1, &["database-rds", "storage"])
        .deploying("database-rds", 1)
        .skipped("storage")
        .at(1.0)
        .deployed("database-rds", 1);
    let mut verbose = Verbose::new(Palette { enabled: false });
    let mut folded = Model::new("D1BRV40", "dev");
    let mut said = Vec::new();
    for event in &run.events {
        folded.apply(event);
        said.extend(verbose.lines(&folded, event).into_iter().flatten());
    }
    let said = said.join("\n");
    assert!(
        said.contains("Deploying: database-rds · skipped: storage"),
        "{said}"
    );
    assert!(!said.contains("queued"), "{said}");
}

// ---- the interactive view: a failure read in full ----

/// A failed stack's row says its message, not only its code; the details wrap a long message
/// so its end (the fix) is read, expanded or not; a stack without logs says so; Esc is in the
/// help.
#[test]
fn tui_failure_is_read_in_full_and_logs_and_keys_say_what_there_is() {
    let long = "Unable to create queue: QueueDeletedRecently: You must wait 60 seconds after \
                deleting a queue before you can create another with the same name";
    let mut run = RunBuilder::start(&[
        ("queue", 1, &[], 10.0, 1),
        ("cache", 1, &[], 10.0, 1),
        ("dns", 1, &[], 10.0, 1),
    ]);
    run.at(0.0)
        .layer(1, 1, &["queue", "cache", "dns"])
        .skipped("dns")
        .deploying("queue", 1)
        .deploying("cache", 1)
        .at(2.0)
        .push(EventData::StackFailed(StackFailed {
            stack: "queue".into(),
            error: ErrorDetail {
                code: "COMMAND_FAILED".into(),
                message: long.into(),
                details: None,
            },
            duration_seconds: 2,
        }));
    let model = run.model();
    let queue = model.stack_index("queue").unwrap();
    let cache = model.stack_index("cache").unwrap();
    let mut ui = Ui {
        selected: Some(queue),
        follow: false,
        ..Ui::default()
    };
    let screen = tui(&model, &mut ui, at(3.0), 100, 30);
    let row = screen.lines().find(|l| l.contains(" queue ")).unwrap();
    assert!(
        row.contains("failed: COMMAND_FAILED: Unable to create queue"),
        "{screen}"
    );
    for expanded in [false, true] {
        ui.expanded = expanded;
        let screen = tui(&model, &mut ui, at(3.0), 100, 30);
        assert!(screen.contains("with the same name"), "{screen}");
    }
    // A stack that ended without logs.
    let mut ui = Ui {
        selected: model.stack_index("dns"),
        follow: false,
        ..Ui::default()
    };
    let screen = tui(&model, &mut ui, at(3.0), 100, 30);
    assert!(screen.contains("│No logs "), "{screen}");
    // A running stack with no logs yet.
    let mut ui = Ui {
        selected: Some(cache),
        follow: false,
        ..Ui::default()
    };
    let screen = tui(&model, &mut ui, at(3.0), 100, 30);
    assert!(screen.contains("│No logs yet "), "{screen}");
    ui.handle_key(key(KeyCode::Char('?')), Some(&model));
    let screen = tui(&model, &mut ui, at(3.0), 100, 30);
    assert!(screen.contains(" Esc "), "{screen}");
}

// ---- GitHub Actions ----

/// A plan under GitHub Actions: each stack's planned resources and verdict in one group,
/// titled with its counts, closed before anything else is said (stacks plan side by side).
#[test]
fn github_actions_folds_each_planned_stack_in_a_group_titled_with_its_counts() {
    let p = common::Project::new();
    p.manifest(
        "GH",
        r#"
environments: [dev]
defaults: { executor: simulate }
stacks:
  network:
    resources:
      - { type: "aws:ec2/vpc:Vpc", name: vpc, seconds: 0.2 }
      - { type: "aws:ec2/subnet:Subnet", name: a, seconds: 0.2 }
  cdn:
    resources: [{ type: "aws:cloudfront/distribution:Distribution", name: cdn, seconds: 0.2 }]
"#,
    );
    let out = p
        .cmd()
        .env("GITHUB_ACTIONS", "true")
        .args(["plan", "GH", "-e", "dev", "--verbose", "--color", "never"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    for (stack, title, resource) in [
        (
            "network",
            "network (+2 ~0 -0)",
            "+ create aws:ec2/vpc:Vpc (vpc)",
        ),
        (
            "cdn",
            "cdn (+1 ~0 -0)",
            "+ create aws:cloudfront/distribution:Distribution (cdn)",
        ),
    ] {
        let open = lines
            .iter()
            .position(|l| *l == format!("::group::{title}"))
            .unwrap_or_else(|| panic!("no group {title}:\n{text}"));
        let close = open
            + lines[open..]
                .iter()
                .position(|l| *l == "::endgroup::")
                .unwrap();
        let inside = &lines[open + 1..close];
        let prefix = format!("] [{stack}] ");
        assert!(
            inside
                .iter()
                .all(|l| l.contains(&prefix.replace("] [", "]   ["))),
            "only {stack}'s lines in its group:\n{text}"
        );
        assert!(inside.iter().any(|l| l.ends_with(resource)), "{text}");
        assert!(inside.iter().any(|l| l.contains("✓ Planned")), "{text}");
    }
    assert_eq!(
        text.matches("::group::").count(),
        text.matches("::endgroup::").count()
    );
}

/// A plan in the interactive view: a destructive stack's row is red (not only marked in
/// text), and the details list what the plan does to each resource, destructive ones red.
#[test]
fn tui_plan_marks_destructive_stacks_red_and_lists_planned_resources() {
    use ratatui::style::Color;
    let mut run = RunBuilder::start(&[("dns", 1, &[], 10.0, 2), ("cdn", 1, &[], 10.0, 1)]);
    let planned = |stack: &str, name: &str, action: PlanAction| {
        EventData::ResourcePlanned(ResourcePlanned {
            stack: stack.into(),
            resource: ResourceRef {
                urn: String::new(),
                type_: "terraform_data".into(),
                name: name.into(),
                id: None,
                address: Some(format!("terraform_data.{name}")),
            },
            action,
            destructive: action.is_destructive(),
            drift: false,
            previous_address: None,
        })
    };
    let done = |stack: &str, counts: PlanCounts| {
        EventData::StackPlanned(StackPlanned {
            stack: stack.into(),
            plan: PlanSummary {
                counts,
                changes: true,
                ..Default::default()
            },
            provisional: vec![],
            no_preview: None,
            duration_seconds: 1,
        })
    };
    let mut dns = PlanCounts::default();
    dns.count(PlanAction::Create);
    dns.count(PlanAction::Delete);
    let mut cdn = PlanCounts::default();
    cdn.count(PlanAction::Create);
    run.at(0.0)
        .layer(1, 1, &["dns", "cdn"])
        .deploying("dns", 1)
        .deploying("cdn", 1)
        .push(planned("dns", "cert", PlanAction::Create))
        .push(planned("dns", "old_zone", PlanAction::Delete))
        .push(planned("cdn", "edge", PlanAction::Create))
        .at(1.0)
        .push(done("dns", dns))
        .push(done("cdn", cdn));
    let model = run.model();
    let mut ui = Ui {
        selected: model.stack_index("dns"),
        follow: false,
        ..Ui::default()
    };
    let mut terminal = Terminal::new(TestBackend::new(120, 30)).unwrap();
    let look = Look {
        color: true,
        offset: FixedOffset::east_opt(0).unwrap(),
    };
    terminal
        .draw(|f| interactive::draw(f, Some(&model), &mut ui, at(2.0), &look))
        .unwrap();
    let buffer = terminal.backend().buffer().clone();
    let area = *buffer.area();
    let row_of = |needle: &str| {
        (0..area.height)
            .find_map(|y| {
                let text: String = (0..area.width)
                    .map(|x| buffer[(x, y)].symbol().to_owned())
                    .collect();
                text.find(needle)
                    .map(|at| (y, text[..at].chars().count() as u16))
            })
            .unwrap_or_else(|| panic!("no {needle:?} on the screen"))
    };
    let fg = |(y, x): (u16, u16)| buffer[(x, y)].fg;
    // The rows: dns's plan is red, cdn's is not.
    assert_eq!(
        fg(row_of("+1 to add, ~0 to change, -1 to destroy")),
        Color::Red
    );
    assert_ne!(
        fg(row_of("+1 to add, ~0 to change, -0 to destroy")),
        Color::Red
    );
    // The details: every planned resource, the delete red.
    assert_eq!(
        fg(row_of("- delete terraform_data.old_zone (destructive)")),
        Color::Red
    );
    assert_ne!(fg(row_of("+ create terraform_data.cert")), Color::Red);
}

/// A replacement is one resource with `action: replace`: the interactive view says it is
/// replacing, then replaced — not "Created" or "Updated".
#[test]
fn tui_says_a_replacement_is_replaced() {
    let mut run = RunBuilder::start(&[("dns", 1, &[], 10.0, 2)]);
    run.at(0.0).layer(1, 1, &["dns"]).deploying("dns", 1);
    let replace = |state: ResourceState, name: &str| {
        cloud::testing::addressed_resource(
            "dns",
            state,
            name,
            Some(cloud::event::PlanAction::Replace),
        )
    };
    run.push(replace(ResourceState::Updating, "zone"))
        .push(replace(ResourceState::Updating, "cert"))
        .at(1.0)
        .push(replace(ResourceState::Updated, "zone"));
    let model = run.model();
    let mut ui = Ui {
        selected: model.stack_index("dns"),
        follow: false,
        ..Ui::default()
    };
    let screen = tui(&model, &mut ui, at(2.0), 120, 30);
    let line = |name: &str| {
        screen
            .lines()
            .find(|l| l.contains(&format!("─ {name}")))
            .unwrap_or_else(|| panic!("{name}: {screen}"))
            .to_owned()
    };
    assert!(line("zone").contains("✓ Replaced"), "{screen}");
    assert!(line("cert").contains("→ Replacing"), "{screen}");
    assert!(!screen.contains("Updated"), "{screen}");
}

/// A drift check in the simple and interactive views: the drifted stack marked `⚠` with its
/// resource and the attribute that changed, the others in sync; the run's totals at the end.
#[test]
fn a_drift_check_shows_each_stacks_health_and_what_drifted() {
    let mut run = RunBuilder::start(&[("dns", 1, &[], 10.0, 1), ("cdn", 1, &[], 10.0, 1)]);
    let checked = |stack: &str, status: DriftStatus, n: u32| {
        EventData::StackDriftChecked(StackDriftChecked {
            stack: stack.into(),
            status,
            drifted_resources: n,
            drifted_since: None,
            reason: None,
            duration_seconds: 1,
        })
    };
    run.operation(Operation::Drift)
        .at(0.0)
        .deploying("dns", 1)
        .deploying("cdn", 1)
        .push(EventData::ResourceDrifted(ResourceDrifted {
            stack: "dns".into(),
            resource: ResourceRef {
                urn: String::new(),
                type_: "terraform_data".into(),
                name: "cert".into(),
                id: None,
                address: Some("terraform_data.cert".into()),
            },
            action: PlanAction::Update,
            attributes: vec![DriftedAttribute {
                name: "input".into(),
                before: Some("v1".into()),
                after: Some("edited".into()),
                sensitive: false,
            }],
        }))
        .at(1.0)
        .push(checked("dns", DriftStatus::Drifted, 1))
        .push(checked("cdn", DriftStatus::InSync, 0))
        .complete(DeploymentState::Deployed, 1);
    let model = run.model();
    let lines = Simple::new()
        .finish(&model, at(2.0), &plain(100, 24))
        .join("\n");
    assert!(lines.contains("⚠ dns (1s): drifted: 1 resource"), "{lines}");
    assert!(
        lines.contains("terraform_data.cert: input changed (\"v1\" → \"edited\")"),
        "{lines}"
    );
    assert!(lines.contains("✓ cdn (1s): in sync"), "{lines}");
    assert!(
        lines.contains("Drift: 1 stack drifted (dns: 1 resource); 1 in sync"),
        "{lines}"
    );
    let mut ui = Ui {
        selected: model.stack_index("dns"),
        follow: false,
        ..Ui::default()
    };
    let screen = tui(&model, &mut ui, at(2.0), 120, 30);
    assert!(screen.contains("⚠ dns"), "{screen}");
    assert!(screen.contains("drifted: 1 resource"), "{screen}");
    assert!(
        screen.contains("Checked in 1s · drifted: 1 resource"),
        "{screen}"
    );
    assert!(
        screen.contains("⚠ terraform_data.cert: input changed (\"v1\" → \"edited\")"),
        "{screen}"
    );
}

/// A stack waiting to retry says so in the simple view and in its interactive row: the attempt,
/// the wait left and the error it retries.
#[test]
fn a_retrying_stack_shows_its_retry_in_both_views() {
    let mut run = RunBuilder::start(&[("queue", 1, &[], 10.0, 1)]);
    run.at(0.0)
        .layer(1, 1, &["queue"])
        .deploying("queue", 1)
        .at(4.0)
        .push(EventData::StackRetrying(StackRetrying {
            stack: "queue".into(),
            attempt: 2,
            attempts: 3,
            pattern: "ThrottlingException".into(),
            error: ErrorDetail {
                code: ErrorCode::CommandFailed,
                message: "ThrottlingException: Rate exceeded".into(),
                details: None,
            },
            delay_seconds: 12.0,
        }));
    let model = run.model();
    let line = "↻ retry 2/3 in 8s: ThrottlingException: Rate exceeded";
    let text = simple::screen(&model, at(8.0), &plain(100, 20));
    assert!(text.contains(line), "{text}");
    let screen = tui(&model, &mut Ui::default(), at(8.0), 120, 20);
    assert!(screen.contains(line), "{screen}");
}

// ---- the interactive view driven by a recorded journal ----

/// A real run of the bundled example (see tests/fixtures/journal/README.md): `cdn` failed at
/// once (blocking `frontend`), `database-rds` took 11 s against its usual 5 s, and the run
/// waited on `database-rds → api`.
const JOURNAL: &str = include_str!("fixtures/journal/failed-with-critical-path.jsonl");

/// The model as a view had it at `time` (every event of the journal up to then), and `time`.
fn replayed_until(time: &str) -> (Model, DateTime<Utc>) {
    let now: DateTime<Utc> = time.parse().unwrap();
    let events: Vec<Event> = JOURNAL
        .lines()
        .map(|line| Event::from_json_line(line).unwrap())
        .take_while(|e| e.timestamp <= now)
        .collect();
    (Model::from_events(&events).unwrap(), now)
}

/// 09:23:37.6: `cdn` failed, `database-rds` 8 s into its usual 5, `api` waiting for it.
fn journal_mid_run() -> (Model, DateTime<Utc>) {
    replayed_until("2026-12-04T09:23:37.559Z")
}

fn journal_finished() -> (Model, DateTime<Utc>) {
    replayed_until("2026-12-04T09:23:43.233Z")
}

/// The row of `stack` in the stack list.
fn row<'a>(screen: &'a str, stack: &str) -> &'a str {
    let needle = format!(" {stack} ");
    screen
        .lines()
        .find(|l| l.contains(&needle) && l.contains(" L"))
        .unwrap_or_else(|| panic!("no row of {stack} in\n{screen}"))
}

#[test]
fn tui_journal_mid_run_80x24() {
    let (model, now) = journal_mid_run();
    let screen = tui(&model, &mut Ui::default(), now, 80, 24);
    // Attention order: the failed stack, the running one, the pending one, then the rest.
    let rows: Vec<&str> = screen
        .lines()
        .filter_map(|l| l.split("││").nth(1))
        .collect();
    assert!(rows[0].contains("✗ cdn"), "{screen}");
    assert!(rows[1].contains("→ database-rds"), "{screen}");
    assert!(rows[2].contains("⏸ api"), "{screen}");
    // The critical path: marked on its rows, said in the header.
    assert!(row(&screen, "database-rds").contains("◆ L3"), "{screen}");
    assert!(row(&screen, "api").contains("◆ L5"), "{screen}");
    assert!(!row(&screen, "cdn").contains('◆'), "{screen}");
    assert!(
        screen.contains("Waiting on: database-rds → api"),
        "{screen}"
    );
    assert!(
        row(&screen, "database-rds").contains("3s over its usual 5s"),
        "{screen}"
    );
    assert!(
        row(&screen, "api").contains("waiting for 1/4: database-rds"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn tui_journal_mid_run_200x60() {
    let (model, now) = journal_mid_run();
    let mut ui = Ui::default();
    let screen = tui(&model, &mut ui, now, 200, 60);
    // The details of the running stack say it runs long and is on the path.
    assert!(
        screen.contains("8s elapsed") && screen.contains("· 3s over its usual 5s"),
        "{screen}"
    );
    assert!(screen.contains("· ◆ critical path"), "{screen}");
    insta::assert_snapshot!("tui_journal_mid_run_200x60", screen);
    // A pending stack's details say what it waits for, of all it depends on.
    ui.handle_key(key(KeyCode::Char('j')), Some(&model));
    let screen = tui(&model, &mut ui, now, 200, 60);
    assert!(
        screen.contains("⏸ Waiting for 1/4: database-rds"),
        "{screen}"
    );
}

#[test]
fn tui_journal_finished_80x24() {
    let (model, now) = journal_finished();
    let screen = tui(&model, &mut Ui::default(), now, 80, 24);
    assert!(screen.contains("✗ D1BRV40-dev failed"), "{screen}");
    // Nothing left to wait on: no mark, no line.
    assert!(!screen.contains("Waiting on"), "{screen}");
    assert!(!screen.contains('◆'), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn tui_journal_finished_200x60() {
    let (model, now) = journal_finished();
    insta::assert_snapshot!(tui(&model, &mut Ui::default(), now, 200, 60));
}

fn shown(model: &Model, ui: &Ui) -> Vec<String> {
    interactive::visible(model, ui)
        .into_iter()
        .map(|i| model.stacks[i].name.clone())
        .collect()
}

#[test]
fn attention_order_failed_running_pending_then_finished_each_in_plan_order() {
    let (model, _) = journal_mid_run();
    assert_eq!(
        names(&model),
        [
            "cdn",
            "database-rds",
            "api",
            "network",
            "security",
            "secrets",
            "dns",
            "storage",
            "compute",
            "queue",
            "frontend",
            "monitoring"
        ]
    );
}

#[test]
fn the_selection_stays_on_its_stack_when_the_order_changes() {
    // 09:23:30.3: cdn, compute and queue running; select cdn.
    let (before, _) = replayed_until("2026-12-04T09:23:30.300Z");
    let mut ui = Ui::default();
    while ui.selected.is_none_or(|i| before.stacks[i].name != "cdn") {
        assert_eq!(
            ui.handle_key(key(KeyCode::Char('j')), Some(&before)),
            Action::Redraw
        );
    }
    let at = |model: &Model, ui: &Ui| {
        interactive::visible(model, ui)
            .iter()
            .position(|&i| Some(i) == ui.selected)
    };
    assert_ne!(at(&before, &ui), Some(0));
    // cdn fails: it moves to the top, and the selection with it.
    let (after, _) = replayed_until("2026-12-04T09:23:30.500Z");
    ui.handle_key(key(KeyCode::Down), Some(&after));
    ui.handle_key(key(KeyCode::Up), Some(&after));
    assert_eq!(after.stacks[ui.selected.unwrap()].name, "cdn");
    assert_eq!(at(&after, &ui), Some(0));
}

#[test]
fn slash_filters_by_name_enter_keeps_esc_clears() {
    let (model, _) = journal_mid_run();
    let mut ui = Ui::default();
    for c in ['/', 'S', 'e'] {
        assert_eq!(
            ui.handle_key(key(KeyCode::Char(c)), Some(&model)),
            Action::Redraw
        );
    }
    assert!(ui.typing);
    assert_eq!(ui.filter, "Se");
    // Any case, in attention order.
    assert_eq!(shown(&model, &ui), ["database-rds", "security", "secrets"]);
    // Other keys type nothing (and, with the run over, would not leave).
    assert_eq!(
        ui.handle_key(key(KeyCode::Tab), Some(&model)),
        Action::Nothing
    );
    let alt_x = KeyEvent::new(KeyCode::Char('x'), KeyModifiers::ALT);
    assert_eq!(ui.handle_key(alt_x, Some(&model)), Action::Nothing);
    assert_eq!(ui.filter, "Se");
    // Letters that are keys elsewhere (q: cancel) are typed while filtering.
    ui.handle_key(key(KeyCode::Char('q')), Some(&model));
    assert!(!ui.confirm);
    assert!(shown(&model, &ui).is_empty());
    ui.handle_key(key(KeyCode::Backspace), Some(&model));
    ui.handle_key(key(KeyCode::Char('c')), Some(&model));
    ui.handle_key(key(KeyCode::Char('r')), Some(&model));
    assert_eq!(shown(&model, &ui), ["secrets"]);
    // The selection is on a stack shown.
    assert_eq!(model.stacks[ui.selected.unwrap()].name, "secrets");
    ui.handle_key(key(KeyCode::Enter), Some(&model));
    assert!(!ui.typing);
    assert_eq!(shown(&model, &ui), ["secrets"]);
    // Kept: keys are keys again.
    ui.handle_key(key(KeyCode::Char('?')), Some(&model));
    assert!(ui.help);
    ui.handle_key(key(KeyCode::Esc), Some(&model));
    ui.handle_key(key(KeyCode::Esc), Some(&model));
    assert_eq!(shown(&model, &ui).len(), 12);
    // Esc while typing clears it too.
    ui.handle_key(key(KeyCode::Char('/')), Some(&model));
    ui.handle_key(key(KeyCode::Char('x')), Some(&model));
    ui.handle_key(key(KeyCode::Esc), Some(&model));
    assert!(!ui.typing && ui.filter.is_empty());
    assert_eq!(shown(&model, &ui).len(), 12);
}

#[test]
fn tui_filter_is_shown_while_typed_and_in_the_list_title() {
    let (model, now) = journal_mid_run();
    let mut ui = Ui::default();
    for c in ['/', 'r', 'd', 's'] {
        ui.handle_key(key(KeyCode::Char(c)), Some(&model));
    }
    let screen = tui(&model, &mut ui, now, 80, 24);
    let footer = screen.lines().last().unwrap();
    assert!(
        footer.contains("/rds▏   Enter keeps · Esc clears"),
        "{screen}"
    );
    assert!(screen.contains("Stacks (1 of 12 · /rds)"), "{screen}");
    ui.handle_key(key(KeyCode::Char('x')), Some(&model));
    let screen = tui(&model, &mut ui, now, 80, 24);
    assert!(
        screen.contains("No stack matches · Esc: all stacks"),
        "{screen}"
    );
}

#[test]
fn p_shows_only_the_critical_path_and_again_all() {
    let (model, now) = journal_mid_run();
    let mut ui = Ui::default();
    ui.handle_key(key(KeyCode::Char('p')), Some(&model));
    assert!(ui.only_path);
    assert_eq!(shown(&model, &ui), ["database-rds", "api"]);
    let screen = tui(&model, &mut ui, now, 80, 24);
    assert!(
        screen.contains("Stacks (2 of 12 · ◆ critical path)"),
        "{screen}"
    );
    // With a filter, both apply.
    for c in ['/', 'a', 'p', 'i'] {
        ui.handle_key(key(KeyCode::Char(c)), Some(&model));
    }
    assert_eq!(shown(&model, &ui), ["api"]);
    ui.handle_key(key(KeyCode::Enter), Some(&model));
    ui.handle_key(key(KeyCode::Char('p')), Some(&model));
    assert_eq!(shown(&model, &ui), ["api"]);
    ui.handle_key(key(KeyCode::Esc), Some(&model));
    assert_eq!(shown(&model, &ui).len(), 12);
    // Once the run is over nothing is on the path, and the list says so.
    let (done, now) = journal_finished();
    ui.handle_key(key(KeyCode::Char('p')), Some(&done));
    assert!(shown(&done, &ui).is_empty());
    let screen = tui(&done, &mut ui, now, 80, 24);
    assert!(screen.contains("Nothing on the critical path"), "{screen}");
}

#[test]
fn s_switches_to_the_plain_stream_and_back() {
    let (model, _) = journal_mid_run();
    let mut ui = Ui::default();
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('s')), Some(&model)),
        Action::Stream
    );
    assert!(ui.stream);
    // Browsing keys do nothing there: there is nothing drawn to browse.
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('j')), Some(&model)),
        Action::Nothing
    );
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('s')), Some(&model)),
        Action::Stream
    );
    assert!(!ui.stream);
    // q there goes back to the full screen to ask.
    ui.handle_key(key(KeyCode::Char('s')), Some(&model));
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('q')), Some(&model)),
        Action::Stream
    );
    assert!(!ui.stream && ui.confirm);
    // Once the run is over, q leaves from there.
    let (done, _) = journal_finished();
    let mut ui = Ui::default();
    ui.handle_key(key(KeyCode::Char('s')), Some(&done));
    assert_eq!(
        ui.handle_key(key(KeyCode::Char('q')), Some(&done)),
        Action::Quit
    );
}
