//! The bus: a sink that is slow never slows the deploy, and still gets every event (or, for a
//! view, the latest state). Runs the real orchestrator on the simulator, with sinks that sleep.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloud::bus::{Bus, Delivery, Handle, Inbox, Purpose, Received, Report, Sink};
use cloud::cancel::Cancel;
use cloud::event::{Event, Operation};
use cloud::orchestrator::{self, RunOptions};
use cloud::plan::{NoPastRuns, Plan};
use cloud::progress::Model;

/// A sink that takes 50 ms per item.
struct Slow {
    delivery: Delivery,
    seen: Arc<Seen>,
    /// Its queue in memory ([`Sink::capacity`]).
    capacity: usize,
}

/// What a slow sink got.
#[derive(Default)]
struct Seen {
    events: Mutex<Vec<Arc<Event>>>,
    model: Mutex<Option<Model>>,
    received: AtomicU64,
}

impl Sink for Slow {
    fn name(&self) -> String {
        format!("slow-{:?}", self.delivery)
    }
    fn delivery(&self) -> Delivery {
        self.delivery
    }
    fn purpose(&self) -> Purpose {
        Purpose::Record
    }
    fn capacity(&self) -> usize {
        self.capacity
    }
    fn start(self: Box<Self>, inbox: Inbox) -> std::io::Result<Handle> {
        Handle::thread("slow", move || {
            let seen = &self.seen;
            while let Some(item) = inbox.recv() {
                std::thread::sleep(Duration::from_millis(50));
                seen.received.fetch_add(1, Ordering::SeqCst);
                let mut model = seen.model.lock().unwrap();
                match item {
                    Received::Event(e) => {
                        model
                            .get_or_insert_with(|| Model::new(&e.deployment_id, &e.environment))
                            .apply(&e);
                        seen.events.lock().unwrap().push(e);
                    }
                    Received::Resync(m) => *model = Some((*m).clone()),
                }
            }
            Report::ok("slow", seen.received.load(Ordering::SeqCst))
        })
    }
}

fn slow(delivery: Delivery) -> (Slow, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let sink = Slow {
        delivery,
        seen: Arc::clone(&seen),
        // Small queues, so that the spill file and the snapshot are both used.
        capacity: 16,
    };
    (sink, seen)
}

fn plan() -> Plan {
    // 10 stacks × 4 zero-second resources in 2 layers: ~120 events in a few ms.
    let mut yaml = String::from("environments: [dev]\ndefaults: { executor: simulate }\nstacks:\n");
    for i in 0..10 {
        yaml.push_str(&format!("  s{i}:\n"));
        if i >= 5 {
            yaml.push_str(&format!("    dependencies: [s{}]\n", i - 5));
        }
        yaml.push_str("    resources:\n");
        for r in 0..4 {
            yaml.push_str(&format!(
                "      - {{ type: \"aws:s3/bucket:Bucket\", name: b{r}, seconds: 0 }}\n"
            ));
        }
    }
    let manifest = cloud::manifest::parse(
        Path::new("cloud/deploy/BUS/deployment.yaml"),
        &yaml,
        &cloud::executor::registry(),
    )
    .unwrap();
    Plan::new(&manifest, &NoPastRuns).unwrap()
}

#[test]
fn a_slow_sink_never_holds_the_deploy_back_and_misses_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let plan = plan();
    let (every, every_seen) = slow(Delivery::Every);
    let (latest, latest_seen) = slow(Delivery::Latest);
    let mut bus = Bus::new(scratch.path());
    bus.attach(Box::new(every)).unwrap();
    bus.attach(Box::new(latest)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let opts = RunOptions {
        environment: "dev".into(),
        operation: Operation::Deploy,
        parallelism: None,
        fail_fast: false,
        grace: Duration::from_secs(1),
        run_id: "r".into(),
        user: None,
        scratch: scratch.path().to_path_buf(),
        ..Default::default()
    };
    let (result, received_when_done, shutdown) = runtime.block_on(async {
        let result = orchestrator::run(&plan, &opts, bus.publisher(), Cancel::new()).await;
        // The deploy is over while the slow sink has seen only its first few events: at 50 ms
        // an event, waiting for it would have taken the deploy ~6 s.
        let received = every_seen.received.load(Ordering::SeqCst);
        (
            result,
            received,
            bus.shutdown(Duration::from_secs(60)).await,
        )
    });
    let total = result.model.sequence;
    assert!(total > 100, "{total} events");
    assert!(
        received_when_done < total / 4,
        "the deploy waited for the sink: it had {received_when_done} of {total} events when the run ended"
    );

    // The `Every` sink got every event, in order, after the run (from memory and the spill).
    assert!(
        shutdown.reports.iter().all(|r| r.problem.is_none()),
        "{:?}",
        shutdown.reports
    );
    let got = every_seen.events.lock().unwrap();
    let sequences: Vec<u64> = got.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=total).collect::<Vec<_>>());

    // The `Latest` sink got fewer items but ends with the same state (a snapshot caught it up).
    assert!(latest_seen.received.load(Ordering::SeqCst) < total);
    let model = latest_seen.model.lock().unwrap();
    let model = model.as_ref().expect("a model");
    assert_eq!(
        serde_json::to_value(model).unwrap(),
        serde_json::to_value(&result.model).unwrap()
    );
    assert!(model.is_finished());
}

/// A live view's screen that stands for the interactive one: its wait for keys uses up the whole
/// frame, and it counts its draws.
struct KeyWaitingScreen {
    draws: Arc<AtomicU64>,
}

impl cloud::view::live::Screen for KeyWaitingScreen {
    fn draw(&mut self, _model: Option<&Model>) -> std::io::Result<()> {
        self.draws.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn wait(
        &mut self,
        _inbox: &Inbox,
        wait: Duration,
        _model: Option<&Model>,
    ) -> std::io::Result<cloud::view::live::Wake> {
        std::thread::sleep(wait.min(cloud::view::live::FRAME));
        Ok(cloud::view::live::Wake::Nothing)
    }
}

struct LiveView {
    draws: Arc<AtomicU64>,
    folded: Arc<AtomicU64>,
}

impl Sink for LiveView {
    fn name(&self) -> String {
        "live view".into()
    }
    fn delivery(&self) -> Delivery {
        Delivery::Latest
    }
    fn purpose(&self) -> Purpose {
        Purpose::Show
    }
    fn start(self: Box<Self>, inbox: Inbox) -> std::io::Result<Handle> {
        Handle::thread("live", move || {
            let mut screen = KeyWaitingScreen { draws: self.draws };
            let model = cloud::view::live::run(&inbox, &mut screen).unwrap();
            let logs = model.map_or(0, |m| m.stacks.iter().map(|s| s.logs.len()).sum::<usize>());
            self.folded.store(logs as u64, Ordering::SeqCst);
            Report::ok("live view", 0)
        })
    }
}

/// The interactive view waits a frame for keys between draws; the events queued meanwhile must
/// all be folded before the next draw. (It folded one per frame: 500 events were 25 s behind.)
#[test]
fn a_view_that_waits_for_keys_folds_every_queued_event_each_frame() {
    use cloud::testing::{event, log};
    let dir = tempfile::tempdir().unwrap();
    let mut bus = Bus::new(dir.path());
    let (draws, folded) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    bus.attach(Box::new(LiveView {
        draws: Arc::clone(&draws),
        folded: Arc::clone(&folded),
    }))
    .unwrap();
    let publisher = bus.publisher();
    let mut model = Model::new("D1BRV40", "dev");
    for n in 1..=60u64 {
        let event = Arc::new(event(n, log("s", &format!("line {n}"))));
        model.apply(&event);
        publisher.send(event, &model);
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let shutdown = runtime.block_on(bus.shutdown(Duration::from_secs(5)));
    for (name, handle) in shutdown.views {
        assert!(handle.join(&name).problem.is_none());
    }
    assert_eq!(folded.load(Ordering::SeqCst), 60);
    // One draw per event before the fix; a handful now, however the threads are scheduled.
    let draws = draws.load(Ordering::SeqCst);
    assert!(draws <= 10, "{draws} draws for 60 queued events");
}
