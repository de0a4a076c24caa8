//! The live views in a real pseudo-terminal: the `cloud` binary runs in tmux on the bundled
//! example; `capture-pane` reads the screen, `send-keys` types, `display -p` reads the
//! terminal's modes after exit.
//!
//! Without tmux these tests fail when `CI` is set and are skipped loudly otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of our own (its own socket), killed when the test ends.
struct Tmux {
    socket: String,
    _project: common::Project,
    dir: PathBuf,
}

fn tmux_missing() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .map_or(true, |o| !o.status.success())
}

impl Tmux {
    /// Starts `cloud deploy D1BRV40 -e dev ARGS` in a 120×40 window, in a copy of the example.
    /// The shell writes `EXIT=<code>` to a file and keeps the pane open afterwards.
    /// `speed` runs the simulated resources that many times faster.
    fn start(name: &str, args: &str, speed: u32) -> Option<Tmux> {
        Self::start_in(name, common::example_project(), "D1BRV40", "", args, speed)
    }

    /// Like [`start`](Self::start), for deployment `id` of `project`, with `env` (`VAR=value …`)
    /// before the command.
    fn start_in(
        name: &str,
        project: common::Project,
        id: &str,
        env: &str,
        args: &str,
        speed: u32,
    ) -> Option<Tmux> {
        let env = format!("CLOUD_SIMULATE_SPEED={speed} {env}");
        Self::start_cloud(name, project, &env, &format!("deploy {id} -e dev {args}"))
    }

    /// Starts `cloud COMMAND_LINE` in `project`, with `env` (`VAR=value …`) before it.
    fn start_cloud(
        name: &str,
        project: common::Project,
        env: &str,
        command_line: &str,
    ) -> Option<Tmux> {
        Self::start_sized(name, project, env, command_line, (120, 40))
    }

    /// [`start_cloud`](Self::start_cloud) in a window of `(columns, rows)`.
    fn start_sized(
        name: &str,
        project: common::Project,
        env: &str,
        command_line: &str,
        (columns, rows): (u16, u16),
    ) -> Option<Tmux> {
        if tmux_missing() {
            if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
                panic!("tmux is required for the terminal tests in CI (apt-get install -y tmux)");
            }
            eprintln!(
                "\n*** SKIPPED {name}: tmux is not installed (apt-get install -y tmux) ***\n"
            );
            return None;
        }
        let dir = project.root().to_path_buf();
        let tmux = Tmux {
            socket: format!("cloud-test-{}-{name}", std::process::id()),
            _project: project,
            dir,
        };
        let bin = env!("CARGO_BIN_EXE_cloud");
        // The terminal views are what is tested: CI=true would choose the verbose view.
        // The shell outlives a Ctrl-C (its trap is reset to the default in `cloud`).
        let script = format!(
            "trap : INT; cd '{}' && env -u CI -u NO_COLOR -u CLOUD_ROOT {env} '{bin}' {command_line}; \
             echo EXIT=$? > exit-code; sleep 600",
            tmux.dir.display()
        );
        tmux.run(&[
            "new-session",
            "-d",
            "-x",
            &columns.to_string(),
            "-y",
            &rows.to_string(),
            "-s",
            "t",
            "sh",
            "-c",
            &script,
        ]);
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-u", "-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("running tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    /// Screen and scrollback.
    fn history(&self) -> String {
        self.run(&["capture-pane", "-p", "-S", "-200", "-t", "t"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Waits until `test` holds for the screen; fails with the screen when it does not.
    fn wait_for(&self, what: &str, test: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if test(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The exit code of `cloud`, once it exited.
    fn exit_code(&self) -> i32 {
        let file = self.dir.join("exit-code");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                if let Some(code) = text.trim().strip_prefix("EXIT=") {
                    return code.parse().unwrap();
                }
            }
            if Instant::now() > deadline {
                panic!("cloud did not exit; the screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Normal mode: no alternate screen, the cursor shown.
    fn assert_terminal_restored(&self) {
        let modes = self.run(&["display", "-p", "-t", "t", "#{alternate_on} #{cursor_flag}"]);
        assert_eq!(
            modes.trim(),
            "0 1",
            "alternate_on cursor_flag after exit; the screen:\n{}",
            self.screen()
        );
    }

    /// The `cloud` process: the child of the pane's shell.
    fn cloud_pid(&self) -> i32 {
        let shell = self.run(&["display", "-p", "-t", "t", "#{pane_pid}"]);
        let children = Command::new("pgrep")
            .args(["-P", shell.trim()])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&children.stdout)
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("the cloud process")
    }

    /// Closes the terminal as a closed window does: the server goes, the pane's tty hangs up.
    fn close_terminal(&self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }

    #[allow(dead_code)]
    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let path = Command::new("tmux")
            .args(["-L", &self.socket, "display", "-p", "#{socket_path}"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
        // tmux leaves its socket file behind.
        if let Ok(path) = path.as_deref() {
            if !path.is_empty() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// The name on the selected row of the stack list (`▸→ network  L1 …`).
fn selected(screen: &str) -> Option<String> {
    let line = screen.lines().find(|l| l.contains('▸'))?;
    let after = line.split('▸').nth(1)?;
    // Skip the state icon, then the name up to the next space.
    let mut chars = after.chars();
    chars.next();
    chars.as_str().split_whitespace().next().map(str::to_owned)
}

#[test]
fn simple_view_shows_layers_and_the_progress_line() {
    let Some(t) = Tmux::start("simple", "", 3) else {
        return;
    };
    let screen = t.wait_for("layer 1 and the progress line", |s| {
        s.contains("Layer 1/5: network") && s.contains("Progress: ") && s.contains("stacks)")
    });
    assert!(screen.contains("Deploying D1BRV40-dev..."), "{screen}");
    // The live block keeps its layout: a running stack, its current resource under it, and
    // the progress line, each on a line of its own.
    t.wait_for("a running stack in layer 2, laid out", |s| {
        let lines: Vec<&str> = s.lines().collect();
        s.contains("Layer 2/5: security, secrets, dns")
            && lines
                .iter()
                .any(|l| l.starts_with("  → ") && l.contains(" elapsed"))
            && lines.iter().any(|l| l.starts_with("    creating aws:"))
            && lines.iter().any(|l| l.starts_with("Progress: "))
    });
    assert_eq!(t.exit_code(), 0);
    let all = t.history();
    for line in [
        "Layer 1/5: network",
        "  ✓ network (",
        "Layer 3/5: database-rds, storage",
        "Layer 5/5: api, frontend, monitoring",
        "Progress: 100% (12/12 stacks deployed)",
        "✓ Complete: D1BRV40-dev",
    ] {
        assert!(all.contains(line), "missing {line:?} in:\n{all}");
    }
    // Finished layers are printed once, not redrawn over and over.
    assert_eq!(all.matches("Layer 1/5: network").count(), 1, "{all}");
    t.assert_terminal_restored();
}

#[test]
fn ctrl_c_in_the_simple_view_cancels_and_leaves_the_summary() {
    let Some(t) = Tmux::start("simple-ctrl-c", "", 1) else {
        return;
    };
    t.wait_for("a running stack", |s| s.contains("→ network"));
    t.keys(&["C-c"]);
    assert_eq!(t.exit_code(), 130);
    let all = t.history();
    assert!(all.contains("✗ Cancelled: D1BRV40-dev"), "{all}");
    assert!(all.contains("Progress: "), "{all}");
    // The echoed ^C must not shift the live block (it would leave a stale line behind).
    for n in 1..=5 {
        let header = format!("Layer {n}/5:");
        assert!(
            all.matches(&header).count() <= 1,
            "{header} twice in:\n{all}"
        );
    }
    t.assert_terminal_restored();
}

#[test]
fn interactive_keys_select_expand_and_q_y_cancels() {
    let Some(t) = Tmux::start("keys", "-i", 1) else {
        return;
    };
    // (The whole screen: the list, the layers and the footer, drawn in one frame.)
    let screen = t.wait_for("the stack list", |s| {
        s.contains("Stacks (12")
            && s.contains("stacks)")
            && selected(s).is_some()
            && s.contains("Elapsed: ")
    });
    assert!(screen.contains("Layers (5)"), "{screen}");
    let first = selected(&screen).unwrap();

    t.keys(&["j"]);
    let screen = t.wait_for("j to move the selection", |s| {
        selected(s).is_some_and(|n| n != first)
    });
    let second = selected(&screen).unwrap();
    t.keys(&["j"]);
    let screen = t.wait_for("j to move the selection again", |s| {
        selected(s).is_some_and(|n| n != second && n != first)
    });
    let third = selected(&screen).unwrap();
    // The list reorders as stacks start and finish, so k is checked by leaving `third`.
    t.keys(&["k"]);
    let screen = t.wait_for("k to move the selection back", |s| {
        selected(s).is_some_and(|n| n != third)
    });
    let now = selected(&screen).unwrap();
    // The details pane names the selected stack.
    t.wait_for("the details of the selection", |s| {
        s.contains(&format!("┌ {now} (Layer"))
    });

    t.keys(&["Enter"]);
    t.wait_for("Enter to expand the details", |s| {
        !s.contains("Stacks (12") && s.contains(&format!("┌ {now} (Layer"))
    });
    t.keys(&["Enter"]);
    t.wait_for("Enter to fold the details", |s| s.contains("Stacks (12"));

    // Ctrl-C asks too; n keeps going.
    t.keys(&["C-c"]);
    t.wait_for("the cancel question", |s| s.contains("Cancel the deploy?"));
    t.keys(&["n"]);
    t.wait_for("the question to close", |s| {
        !s.contains("Cancel the deploy?")
    });

    t.keys(&["q"]);
    t.wait_for("the cancel question", |s| s.contains("Cancel the deploy?"));
    t.keys(&["y"]);
    assert_eq!(t.exit_code(), 130);
    let screen = t.screen();
    assert!(screen.contains("✗ Cancelled: D1BRV40-dev"), "{screen}");
    t.assert_terminal_restored();
}

#[test]
fn interactive_stays_on_the_final_state_until_a_key() {
    let Some(t) = Tmux::start("stay", "-i", 3) else {
        return;
    };
    t.wait_for("the end of the deploy", |s| {
        s.contains("Done · q to exit") && s.contains("100% (12/12 stacks deployed)")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!t.dir.join("exit-code").exists(), "left without a key");
    // A resize redraws at the new size: 80x24 still shows the gauge, the lists and the footer.
    t.run(&["resize-window", "-t", "t", "-x", "80", "-y", "24"]);
    // (The whole redraw is waited for: a capture may land between two lines of it.)
    t.wait_for("the redraw at 80x24", |s| {
        s.lines().count() <= 24
            && s.lines()
                .any(|l| l.ends_with("100% (12/12 stacks deployed)") && l.chars().count() == 80)
            && s.contains("Stacks (12")
            && s.contains("Done · q to exit")
    });
    // Browsing keys still browse the final state.
    t.keys(&["j"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(t.screen().contains("Done · q to exit"));
    t.keys(&["q"]);
    assert_eq!(t.exit_code(), 0);
    assert!(t.screen().contains("✓ Complete: D1BRV40-dev"));
    t.assert_terminal_restored();
}

#[test]
fn interactive_exit_on_done_leaves_at_once() {
    let Some(t) = Tmux::start("exit-on-done", "-i --exit-on-done", 3) else {
        return;
    };
    t.wait_for("the full-screen view", |s| s.contains("Stacks (12"));
    assert_eq!(t.exit_code(), 0);
    let screen = t.screen();
    assert!(screen.contains("✓ Complete: D1BRV40-dev"), "{screen}");
    t.assert_terminal_restored();
}

#[test]
fn sigterm_stops_the_interactive_view_and_restores_the_terminal() {
    let Some(t) = Tmux::start("sigterm", "-i", 1) else {
        return;
    };
    t.wait_for("the full-screen view", |s| s.contains("Stacks (12"));
    unsafe { libc::kill(t.cloud_pid(), libc::SIGTERM) };
    assert_eq!(t.exit_code(), 130);
    t.assert_terminal_restored();
    let all = t.history();
    assert!(all.contains("✗ Cancelled: D1BRV40-dev"), "{all}");
}

/// Whether process `pid` is gone (or a zombie nobody reaped: it has exited).
fn gone_within(pid: i32, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state follows the command name in parentheses.
        let state = state.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
        if matches!(state, None | Some("Z")) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_leaves_the_final_state_of_the_interactive_view() {
    let Some(t) = Tmux::start("sigterm-done", "-i", 20) else {
        return;
    };
    t.wait_for("the end of the deploy", |s| s.contains("Done · q to exit"));
    // After the run, a signal is the only way out that is not a key: it must still work.
    unsafe { libc::kill(t.cloud_pid(), libc::SIGTERM) };
    assert_eq!(t.exit_code(), 0, "the deploy itself succeeded");
    t.assert_terminal_restored();
    assert!(t.screen().contains("✓ Complete: D1BRV40-dev"));
}

#[test]
fn closing_the_terminal_after_the_run_leaves_no_process_behind() {
    let Some(t) = Tmux::start("hangup-done", "-i", 20) else {
        return;
    };
    t.wait_for("the end of the deploy", |s| s.contains("Done · q to exit"));
    let pid = t.cloud_pid();
    t.close_terminal();
    // It used to stay, spinning on the dead terminal at full CPU, forever.
    assert!(
        gone_within(pid, Duration::from_secs(5)),
        "cloud outlived its terminal"
    );
}

#[test]
fn closing_the_terminal_mid_run_stops_it_and_records_the_stop() {
    let Some(t) = Tmux::start("hangup-mid", "-i", 1) else {
        return;
    };
    t.wait_for("the full-screen view", |s| s.contains("Stacks (12"));
    let pid = t.cloud_pid();
    t.close_terminal();
    assert!(
        gone_within(pid, Duration::from_secs(15)),
        "cloud outlived its terminal"
    );
    let journal = std::fs::read_dir(t.dir.join("cloud/deploy/D1BRV40/journal/dev"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("the run's journal");
    let events = common::parse_events(&std::fs::read(journal).unwrap());
    let last = events.last().unwrap();
    assert_eq!(last["type"], "deployment_complete", "{last}");
    assert_eq!(last["data"]["cancelled"], true, "{last}");
}

/// A project with one deployment `ID`.
fn project(id: &str, yaml: &str) -> common::Project {
    let p = common::Project::new();
    p.manifest(id, yaml);
    p
}

#[test]
fn escape_codes_from_a_stack_never_reach_the_terminal() {
    let yaml = r#"
environments: [dev]
stacks:
  rogue:
    executor: command
    deploy: |
      printf '\033[?25l\033]0;pwned\007\033[2Jhidden cursor?\n'
      printf '\033[?1049lleft the alternate screen?\n'
      sleep 2
      echo done
"#;
    let Some(t) = Tmux::start_in("rogue", project("ROGUE", yaml), "ROGUE", "", "-i", 1) else {
        return;
    };
    t.wait_for("the rogue output in the logs", |s| {
        s.contains("left the alternate screen?")
    });
    // Still full-screen: the program's `\033[?1049l` was text, not a command.
    let modes = t.run(&["display", "-p", "-t", "t", "#{alternate_on} #{pane_title}"]);
    assert!(modes.starts_with("1 "), "{modes}");
    assert!(!modes.contains("pwned"), "{modes}");
    t.wait_for("the end", |s| s.contains("Done · q to exit"));
    t.keys(&["q"]);
    assert_eq!(t.exit_code(), 0);
    t.assert_terminal_restored();
    let modes = t.run(&["display", "-p", "-t", "t", "#{pane_title}"]);
    assert!(!modes.contains("pwned"), "{modes}");
}

#[test]
fn a_program_that_reads_the_terminal_fails_at_once() {
    let yaml = r#"
environments: [dev]
stacks:
  asks:
    executor: command
    deploy: 'set -e; read answer < /dev/tty; echo "got $answer"'
"#;
    let Some(t) = Tmux::start_in("tty", project("TTY", yaml), "TTY", "", "--verbose", 1) else {
        return;
    };
    // It would hang forever on a terminal it could read; it has none.
    assert_eq!(t.exit_code(), 1);
    let screen = t.history();
    assert!(
        screen.contains("Failed after 0s: COMMAND_FAILED: sh: 1: cannot open /dev/tty"),
        "{screen}"
    );
}

#[test]
fn a_dumb_terminal_gets_the_verbose_view() {
    let Some(t) = Tmux::start_in(
        "dumb",
        common::example_project(),
        "D1BRV40",
        "TERM=dumb",
        "",
        20,
    ) else {
        return;
    };
    assert_eq!(t.exit_code(), 0);
    let screen = t.history();
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with('[') && l.contains("] Deployment started: D1BRV40-dev")),
        "{screen}"
    );
    assert!(screen.contains("✓ Complete: D1BRV40-dev"), "{screen}");
}

/// A sink in trouble while the interactive view owns the screen (the journal's disk is full)
/// does not write over the view: what it says at once is held until the screen is given back,
/// then printed where it stays.
#[test]
fn a_sinks_trouble_waits_until_the_interactive_view_gives_the_screen_back() {
    let p = common::Project::new();
    let Some(_unmount) = common::full_journal(&p, "a_sinks_trouble_waits…") else {
        return;
    };
    let Some(t) = Tmux::start_in("trouble", p, "FULL", "", "-i", 1) else {
        return;
    };
    // The run is over (the journal's trouble was met and its sink has ended), the view stays.
    let screen = t.wait_for("the end of the run", |s| s.contains("q to exit"));
    assert!(
        !screen.contains("the deploy goes on"),
        "said over the view:\n{screen}"
    );
    t.keys(&["q"]);
    assert_eq!(t.exit_code(), 1);
    t.assert_terminal_restored();
    // (tmux wraps the long line at the window's width.)
    let history = t.history().replace('\n', "");
    assert!(
        history.contains(
            "cannot be written: No space left on device (os error 28); the deploy goes on"
        ),
        "said once the screen was given back:\n{history}"
    );
}

#[test]
fn a_destroy_not_confirmed_says_so_as_an_error_and_exits_2() {
    let Some(t) = Tmux::start_cloud(
        "destroy-declined",
        common::example_project(),
        "",
        "destroy D1BRV40 -e dev",
    ) else {
        return;
    };
    t.wait_for("the question", |s| s.contains("Type `D1BRV40` to confirm:"));
    t.keys(&["nope", "Enter"]);
    assert_eq!(t.exit_code(), 2);
    let screen = t.history();
    assert!(
        screen.contains("error: D1BRV40-dev not destroyed: the answer was not `D1BRV40`"),
        "{screen}"
    );
}

/// A stack of the simulate executor with one slow resource.
const SLOW: &str = r#"
environments: [dev]
defaults: { executor: simulate }
stacks:
  dns:
    resources:
      - { type: "aws:route53/zone:Zone", name: quick, seconds: 0 }
      - { type: "aws:acm/certificate:Certificate", name: cert, seconds: 4 }
"#;

#[test]
fn every_view_shows_the_resource_in_flight_with_its_time() {
    let in_flight = "creating aws:acm/certificate:Certificate (cert) (";
    let Some(t) = Tmux::start_in("flight", project("SLOW", SLOW), "SLOW", "", "", 1) else {
        return;
    };
    t.wait_for("the simple view's line under the running stack", |s| {
        s.lines()
            .any(|l| l.starts_with(&format!("    {in_flight}")))
    });
    assert_eq!(t.exit_code(), 0);
    let Some(t) = Tmux::start_in("flight-i", project("SLOW", SLOW), "SLOW", "", "-i", 1) else {
        return;
    };
    t.wait_for("the interactive row of the running stack", |s| {
        s.lines()
            .any(|l| l.contains(" dns ") && l.contains(in_flight))
    });
    t.wait_for("the end", |s| s.contains("Done · q to exit"));
    t.keys(&["q"]);
    assert_eq!(t.exit_code(), 0);
}

/// A Terraform stack through a fake `tofu`: state refreshed, then three resources in flight
/// for 4 seconds. The simple view says what is in flight, not "Refreshing state...".
#[test]
fn a_terraform_apply_shows_its_resources_in_flight() {
    let resource = |name: &str| {
        format!(
            r#"{{"resource":{{"addr":"terraform_data.{name}","module":"","resource":"terraform_data.{name}","implied_provider":"terraform","resource_type":"terraform_data","resource_name":"{name}","resource_key":null}},"action":"create","id_key":"id","id_value":"{name}-1","elapsed_seconds":4}}"#
        )
    };
    let line = |kind: &str, name: &str, message: &str| {
        format!(
            r#"{{"@level":"info","@message":"terraform_data.{name}: {message}","@module":"terraform.ui","@timestamp":"2026-11-28T01:35:04.859927Z","hook":{},"type":"{kind}"}}"#,
            resource(name)
        ) + "\n"
    };
    let names = ["cert", "zone", "record"];
    let mut started = line("refresh_start", "zone", "Refreshing state... [id=zone-1]");
    let mut finished = String::new();
    for name in names {
        started.push_str(&line("apply_start", name, "Creating..."));
        finished.push_str(&line("apply_complete", name, "Creation complete after 4s"));
    }
    let p = project(
        "TF",
        "environments: [dev]\nstacks:\n  dns: { executor: terraform, path: stacks/dns }\n",
    );
    let dir = p.deployment_dir("TF").join("stacks/dns");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.tf"),
        "resource \"terraform_data\" \"x\" {}\n",
    )
    .unwrap();
    std::fs::write(dir.join("started.jsonl"), started).unwrap();
    std::fs::write(dir.join("finished.jsonl"), finished).unwrap();
    let fake = p.root().join("fake-tofu");
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \"$1\" in\ninit) mkdir -p .terraform ;;\nworkspace) ;;\n\
         output) echo '{}' ;;\napply) cat started.jsonl; sleep 4; cat finished.jsonl ;;\n\
         *) exit 2 ;;\nesac\n",
    )
    .unwrap();
    common::chmod_x(&fake);
    let env = format!("CLOUD_TERRAFORM_BIN='{}'", fake.display());
    let Some(t) = Tmux::start_in("terraform", p, "TF", &env, "", 1) else {
        return;
    };
    let screen = t.wait_for("the resources in flight under the running stack", |s| {
        s.lines().any(|l| {
            l.starts_with("    creating terraform_data.cert (") && l.ends_with(") +2 more")
        })
    });
    assert!(!screen.contains("Refreshing state"), "{screen}");
    assert_eq!(t.exit_code(), 0, "{}", t.history());
}

/// At 80×24 the example fills the screen while it runs. Printing a finished layer never
/// scrolls the screen for nothing: the live block under it is the new one, not the old one
/// drawn again (which pushed the header off and left its height in blank lines under it).
#[test]
fn at_80x24_the_simple_view_never_scrolls_for_nothing() {
    let Some(t) = Tmux::start_sized(
        "small",
        common::example_project(),
        "CLOUD_SIMULATE_SPEED=1",
        "deploy D1BRV40 -e dev",
        (80, 24),
    ) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut full = 0;
    loop {
        let screen = t.screen();
        if screen.contains("Complete:") {
            break;
        }
        let rows: Vec<&str> = screen.lines().collect();
        let running = rows
            .iter()
            .any(|l| l.starts_with("Progress: ") && l.contains("ETA"));
        if running && !screen.contains("Deploying D1BRV40-dev...") {
            full += 1;
            // A running stack that ends takes a line less (its resource's): a line or two
            // may show under the block, never a block's height.
            let under = rows
                .iter()
                .rev()
                .take_while(|l| l.trim().is_empty())
                .count();
            assert!(under <= 3, "{under} blank lines under the block:\n{screen}");
        }
        assert!(Instant::now() < deadline, "the run did not end:\n{screen}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(full > 0, "the run never filled the screen");
    assert_eq!(t.exit_code(), 0);
}

/// `cloud plan` in a real terminal: the simple view ends with the summary table and its
/// totals; the interactive view shows each stack's counts and planned resources, and leaves
/// the same table on the screen when it exits.
#[test]
fn a_plan_shows_each_stacks_counts_and_the_summary_in_the_terminal() {
    let Some(t) = Tmux::start_cloud(
        "plan-simple",
        common::example_project(),
        "CLOUD_SIMULATE_SPEED=50",
        "plan D1BRV40 -e dev",
    ) else {
        return;
    };
    assert_eq!(t.exit_code(), 0);
    let all = t.history();
    for line in [
        "Planning D1BRV40-dev...",
        "network       +6 to add, ~0 to change, -0 to destroy, ±0 to replace",
        "Total         +45 to add, ~0 to change, -0 to destroy, ±0 to replace · 12 stacks changing",
    ] {
        assert!(all.contains(line), "missing {line:?} in:\n{all}");
    }

    let Some(t) = Tmux::start_cloud(
        "plan-interactive",
        common::example_project(),
        "CLOUD_SIMULATE_SPEED=50",
        "plan D1BRV40 -e dev -i",
    ) else {
        return;
    };
    // The selected stack's details list its planned resources (which stack is selected
    // depends on when the view last followed the run).
    let screen = t.wait_for("the finished plan and a stack's planned resources", |s| {
        s.contains("100% (12/12 stacks planned)")
            && s.contains("Done · q to exit")
            && s.contains("  + create aws:")
    });
    assert!(
        screen.contains("network        L1  +6 to add, ~0 to change, -0 to destroy"),
        "{screen}"
    );
    t.keys(&["q"]);
    assert_eq!(t.exit_code(), 0);
    assert!(
        t.history()
            .contains("Total         +45 to add, ~0 to change, -0 to destroy, ±0 to replace"),
        "{}",
        t.history()
    );
    t.assert_terminal_restored();
}

impl Tmux {
    /// Whether the alternate screen (the full screen's) is shown.
    fn alternate_on(&self) -> bool {
        self.run(&["display", "-p", "-t", "t", "#{alternate_on}"])
            .trim()
            == "1"
    }

    /// Screen and scrollback, however long the run was.
    fn all_lines(&self) -> String {
        self.run(&["capture-pane", "-p", "-S", "-5000", "-t", "t"])
    }
}

/// The names in the stack list (right of the layers).
fn listed(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter_map(|l| l.split("││").nth(1))
        .filter_map(|row| {
            // `▸→ name …`: the selection mark, the state icon, then the name.
            let mut chars = row.chars();
            chars.next();
            chars.next();
            chars.as_str().split_whitespace().next().map(str::to_owned)
        })
        .filter(|name| !name.starts_with('│'))
        .collect()
}

#[test]
fn slash_filters_the_stacks_as_typed_enter_keeps_esc_clears() {
    let Some(t) = Tmux::start("filter", "-i", 1) else {
        return;
    };
    // What the run waits on: said in the header, its stacks marked.
    t.wait_for("the critical path in the header and on the rows", |s| {
        s.lines()
            .next()
            .is_some_and(|l| l.contains("   Waiting on: "))
            && s.lines().any(|l| l.contains(" ◆ L"))
    });
    t.keys(&["/"]);
    t.wait_for("the filter prompt", |s| {
        s.lines().last().is_some_and(|l| l.starts_with("/▏"))
    });
    // `s` and `e` are typed into the filter, not taken as keys.
    t.keys(&["s", "e", "c"]);
    let screen = t.wait_for("the filtered list", |s| {
        s.contains("Stacks (2 of 12 · /sec)")
    });
    let mut names = listed(&screen);
    names.sort();
    assert_eq!(names, ["secrets", "security"], "{screen}");
    assert!(
        screen.contains("/sec▏   Enter keeps · Esc clears"),
        "{screen}"
    );
    t.keys(&["Enter"]);
    let screen = t.wait_for("the filter kept, the footer back", |s| {
        s.contains("Stacks (2 of 12 · /sec)") && s.contains("Elapsed: ")
    });
    assert!(!screen.contains("Enter keeps"), "{screen}");
    t.keys(&["Escape"]);
    t.wait_for("every stack again", |s| {
        s.contains("Stacks (12") && listed(s).len() > 2
    });
    t.keys(&["q"]);
    t.wait_for("the cancel question", |s| s.contains("Cancel the deploy?"));
    t.keys(&["y"]);
    assert_eq!(t.exit_code(), 130);
    t.assert_terminal_restored();
}

/// `s` shows the run as plain lines on the terminal's own screen (its scrollback and copy work
/// as anywhere), `s` again the full screen; each line is printed once, however often.
#[test]
fn s_toggles_the_run_as_plain_lines_each_printed_once() {
    let Some(t) = Tmux::start("stream", "-i", 2) else {
        return;
    };
    t.wait_for("the full screen", |s| s.contains("Stacks (12"));
    t.keys(&["s"]);
    t.wait_for("the run as plain lines", |s| {
        s.contains("── plain lines · s: back to the full screen · q: cancel ──")
            && s.contains("] Deployment started: D1BRV40-dev")
    });
    assert!(!t.alternate_on());
    t.wait_for("lines as the run goes on", |s| {
        s.contains("] ─── Layer 2/5")
    });
    t.keys(&["s"]);
    t.wait_for("the full screen again", |s| s.contains("Stacks (12"));
    assert!(t.alternate_on());
    t.wait_for("layer 3 started, seen on the full screen", |s| {
        s.contains("→ L3") || s.contains("✓ L3")
    });
    t.keys(&["s"]);
    t.wait_for("the plain lines again, with what came meanwhile", |s| {
        s.contains("] ─── Layer 3/5")
    });
    t.wait_for("the end of the run", |s| {
        s.contains("── done · q: exit · s: back to the full screen ──")
    });
    t.keys(&["q"]);
    assert_eq!(t.exit_code(), 0);
    t.assert_terminal_restored();
    let all = t.all_lines();
    for (line, times) in [
        ("] Deployment started: D1BRV40-dev", 1),
        ("] ─── Layer 2/5", 1),
        ("] ─── Layer 3/5", 1),
        ("── plain lines ·", 2),
        // The run's own last line; no summary after it.
        ("✓ Complete: D1BRV40-dev", 1),
    ] {
        assert_eq!(all.matches(line).count(), times, "{line:?} in:\n{all}");
    }
}

/// Leaving from the plain stream leaves the cursor below its lines (leaving an alternate
/// screen that is not shown would move it back to where the view started).
#[test]
fn leaving_from_the_plain_stream_keeps_the_cursor_below_its_lines() {
    let yaml = r#"
environments: [dev]
defaults: { executor: simulate }
stacks:
  solo:
    resources:
      - { type: "aws:s3/bucket:Bucket", name: logs, seconds: 0.2 }
"#;
    let Some(t) = Tmux::start_in("stream-cursor", project("SOLO", yaml), "SOLO", "", "-i", 1)
    else {
        return;
    };
    t.wait_for("the end", |s| s.contains("Done · q to exit"));
    t.keys(&["s"]);
    t.wait_for("the plain lines of the finished run", |s| {
        s.contains("── plain lines · done · q: exit") && s.contains("✓ Complete: SOLO-dev")
    });
    t.keys(&["q"]);
    assert_eq!(t.exit_code(), 0);
    t.assert_terminal_restored();
    let screen = t.screen();
    let lines: Vec<&str> = screen.lines().collect();
    let last = lines.iter().rposition(|l| !l.trim().is_empty()).unwrap();
    let cursor: usize = t
        .run(&["display", "-p", "-t", "t", "#{cursor_y}"])
        .trim()
        .parse()
        .unwrap();
    assert!(
        cursor > last,
        "the cursor on row {cursor}, above:\n{screen}"
    );
}

/// A copy of `from`'s project (manifests and journals), for a replay of its runs.
fn copy_project(from: &Path) -> common::Project {
    let p = common::Project::new();
    common::copy_dir(&from.join("cloud"), &p.root().join("cloud"));
    p
}

/// `cloud replay -i` ends on the screen the live run ended on, but for its `[replay …]` mark.
#[test]
fn an_interactive_replay_ends_on_the_live_runs_final_screen() {
    let Some(live) = Tmux::start("replay-live", "-i", 5) else {
        return;
    };
    let done = |s: &str| s.contains("✓ D1BRV40-dev deployed");
    let live_screen = live.wait_for("the live run's final state", done);
    let Some(replay) = Tmux::start_cloud(
        "replay-i",
        copy_project(live.dir()),
        "",
        "replay D1BRV40 -e dev -i --speed 2",
    ) else {
        return;
    };
    let replay_screen = replay.wait_for("the replay's final state", done);
    let (live_lines, replay_lines): (Vec<&str>, Vec<&str>) = (
        live_screen.lines().collect(),
        replay_screen.lines().collect(),
    );
    assert!(replay_lines[0].ends_with("[replay 2×]"), "{replay_screen}");
    assert_eq!(
        replay_lines[0].trim_end_matches("[replay 2×]").trim_end(),
        live_lines[0].trim_end()
    );
    assert_eq!(replay_lines[1..], live_lines[1..], "{replay_screen}");
    replay.keys(&["q"]);
    assert_eq!(replay.exit_code(), 0);
}

/// The views' clock is the replayed one: a run recorded a day ago shows the seconds it had
/// run then, not a day.
#[test]
fn a_replayed_run_shows_its_own_elapsed_time() {
    let p = common::example_project();
    let out = p
        .cmd()
        .env("CLOUD_SIMULATE_SPEED", "5")
        .args(["deploy", "D1BRV40", "-e", "dev", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Recorded a day ago.
    let dir = p.deployment_dir("D1BRV40").join("journal/dev");
    let journal = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    common::backdate_journal(&journal, chrono::TimeDelta::days(1));
    let Some(t) = Tmux::start_cloud("replay-clock", p, "", "replay D1BRV40 -e dev --speed 2")
    else {
        return;
    };
    let screen = t.wait_for("the replay in layer 3", |s| {
        s.contains("Layer 3/5") && s.contains("Progress: ")
    });
    let elapsed = screen
        .lines()
        .find_map(|l| l.split("Elapsed: ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default()
        .to_owned();
    assert!(
        elapsed.ends_with('s') && !elapsed.contains(['m', 'h']),
        "elapsed `{elapsed}`:\n{screen}"
    );
    assert_eq!(t.exit_code(), 0);

    // Killed after 40 events: the summary counts up to the last of them, not to now.
    let p = copy_project(t.dir());
    let journal = p.root().join(journal.strip_prefix(t.dir()).unwrap());
    let lines: Vec<String> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .take(40)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&journal, lines.concat()).unwrap();
    let Some(killed) = Tmux::start_cloud("replay-killed", p, "", "replay D1BRV40 -e dev --instant")
    else {
        return;
    };
    assert_eq!(killed.exit_code(), 1);
    let all = killed.history();
    let elapsed = all
        .lines()
        .rev()
        .find_map(|l| l.split("Elapsed: ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default();
    assert!(
        elapsed.ends_with('s') && !elapsed.contains(['m', 'h']),
        "elapsed `{elapsed}`:\n{all}"
    );
    assert!(
        all.contains("the run ended without deployment_complete (killed?)"),
        "{all}"
    );
}
