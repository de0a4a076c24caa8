//! What the user chose to see and how keys change it: the interactive view's state, tested
//! without a terminal.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::event::StackState;
use crate::progress::{Model, StackModel};

/// What the user chose to see. Stacks are named by their index in `Model::stacks`, which
/// never changes during a run, so the selection stays on a stack while the list reorders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ui {
    pub selected: Option<usize>,
    /// The selection follows the stack that started last until the user moves it.
    pub follow: bool,
    /// First row of the stack list on screen.
    pub offset: usize,
    /// Rows of the stack list at the last draw: the page for PgUp/PgDn.
    pub list_rows: usize,
    /// The selected stack's details take the whole screen.
    pub expanded: bool,
    pub show_logs: bool,
    /// First line of the details on screen.
    pub detail_scroll: usize,
    pub detail_rows: usize,
    pub help: bool,
    /// The "cancel the deploy?" question is open. (Whether the run is stopping is the
    /// model's: `deployment_cancelling`.)
    pub confirm: bool,
    /// `/`: only the stacks whose name holds this (in any case); empty: all of them.
    pub filter: String,
    /// The filter is being typed: letters go to it until Enter (keep) or Esc (clear).
    pub typing: bool,
    /// Only the stacks on the critical path (`Model::critical_path`).
    pub only_path: bool,
    /// The run as plain lines on the terminal's own screen instead of the full screen.
    pub stream: bool,
}

impl Default for Ui {
    fn default() -> Self {
        Ui {
            selected: None,
            follow: true,
            offset: 0,
            list_rows: 10,
            expanded: false,
            show_logs: true,
            detail_scroll: 0,
            detail_rows: 10,
            help: false,
            confirm: false,
            filter: String::new(),
            typing: false,
            only_path: false,
            stream: false,
        }
    }
}

/// What a key asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    Redraw,
    /// Stop the deploy (the user confirmed).
    Cancel,
    /// Stop it now: kill what runs (Ctrl-C while it is stopping).
    Force,
    /// Leave the view (only once the run is over).
    Quit,
    /// Switch between the full screen and the plain stream (`Ui::stream` says which).
    Stream,
}

/// Stacks in attention order: failed ones first, then running, pending, and finished ones
/// (deployed, skipped, blocked, rolled back); each group in the deployment's order.
pub fn order(model: &Model) -> Vec<usize> {
    let mut order: Vec<usize> = (0..model.stacks.len()).collect();
    // Stable: within a group, the plan's order stays.
    order.sort_by_key(|&i| attention(&model.stacks[i]));
    order
}

fn attention(stack: &StackModel) -> u8 {
    match stack.status {
        StackState::Failed => 0,
        StackState::Deploying => 1,
        StackState::Pending if !stack.rolled_back => 2,
        _ => 3,
    }
}

/// The stacks the list shows, in [`order`]: those the filter and the critical-path switch let
/// through.
pub fn visible(model: &Model, ui: &Ui) -> Vec<usize> {
    let needle = ui.filter.to_lowercase();
    order(model)
        .into_iter()
        .filter(|&i| {
            let name = &model.stacks[i].name;
            (needle.is_empty() || name.to_lowercase().contains(&needle))
                && (!ui.only_path || model.critical_path.contains(name))
        })
        .collect()
}

impl Ui {
    /// The stack the details show: the user's choice, or while following, the current stack;
    /// `order` is the list shown ([`visible`]).
    pub(super) fn sync(&mut self, model: &Model, order: &[usize]) {
        if self.follow {
            let current = model
                .current_stack
                .as_deref()
                .and_then(|name| model.stack_index(name));
            if current.is_some_and(|i| order.contains(&i)) {
                self.selected = current;
            }
        }
        // A stack the filter hides is not shown in the details either.
        if self.selected.is_none_or(|i| !order.contains(&i)) {
            self.selected = order.first().copied();
        }
    }

    /// Keeps the selected row on screen.
    pub(super) fn scroll_to_selection(&mut self, order: &[usize]) {
        let rows = self.list_rows.max(1);
        let pos = self
            .selected
            .and_then(|s| order.iter().position(|&i| i == s))
            .unwrap_or(0);
        if pos < self.offset {
            self.offset = pos;
        } else if pos >= self.offset + rows {
            self.offset = pos + 1 - rows;
        }
        self.offset = self.offset.min(order.len().saturating_sub(rows));
    }

    fn move_by(&mut self, model: &Model, delta: isize) {
        let order = visible(model, self);
        if order.is_empty() {
            return;
        }
        self.sync(model, &order);
        let pos = self
            .selected
            .and_then(|s| order.iter().position(|&i| i == s))
            .unwrap_or(0);
        let last = order.len() as isize - 1;
        let next = (pos as isize + delta).clamp(0, last) as usize;
        self.selected = Some(order[next]);
        self.follow = false;
        self.detail_scroll = 0;
        self.scroll_to_selection(&order);
    }

    /// After the list changed (filter, critical path): the selection on a stack shown.
    fn reselect(&mut self, model: &Model) {
        let order = visible(model, self);
        self.sync(model, &order);
        self.scroll_to_selection(&order);
    }

    /// A key while the filter is typed; `None` for the keys that keep their meaning (moving
    /// the selection), and any other key does nothing.
    fn type_filter(&mut self, key: KeyEvent, model: Option<&Model>) -> Option<Action> {
        let plain = !key
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        match key.code {
            KeyCode::Char(c) if plain => self.filter.push(c),
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Enter => self.typing = false,
            KeyCode::Esc => {
                self.typing = false;
                self.filter.clear();
            }
            KeyCode::Up
            | KeyCode::Down
            | KeyCode::PageUp
            | KeyCode::PageDown
            | KeyCode::Home
            | KeyCode::End => return None,
            _ => return Some(Action::Nothing),
        }
        if let Some(model) = model {
            self.reselect(model);
        }
        Some(Action::Redraw)
    }

    /// A key while the run is shown as plain lines: `s` goes back, `q` and Ctrl-C go back to
    /// ask (or leave once the run is over); nothing else is drawn there to act on.
    fn stream_key(
        &mut self,
        key: KeyEvent,
        ctrl_c: bool,
        finished: bool,
        stopping: bool,
    ) -> Action {
        let quit = ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Char('Q'));
        match key.code {
            _ if quit && finished => Action::Quit,
            _ if ctrl_c && stopping => Action::Force,
            _ if quit => {
                self.stream = false;
                self.confirm = !stopping;
                Action::Stream
            }
            KeyCode::Char('s') => {
                self.stream = false;
                Action::Stream
            }
            _ if finished => Action::Quit,
            _ => Action::Nothing,
        }
    }

    fn scroll_details(&mut self, delta: isize) {
        self.detail_scroll = (self.detail_scroll as isize + delta).max(0) as usize;
    }

    /// One key press. `model` is `None` before the first event.
    pub fn handle_key(&mut self, key: KeyEvent, model: Option<&Model>) -> Action {
        let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C'));
        let finished = model.is_some_and(Model::is_finished);
        let stopping = model.is_some_and(Model::stop_asked);
        if self.confirm {
            return match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.confirm = false;
                    Action::Cancel
                }
                // A second Ctrl-C means it.
                _ if ctrl_c => {
                    self.confirm = false;
                    Action::Cancel
                }
                _ => {
                    self.confirm = false;
                    Action::Redraw
                }
            };
        }
        if self.help {
            self.help = false;
            return Action::Redraw;
        }
        if self.stream {
            return self.stream_key(key, ctrl_c, finished, stopping);
        }
        if self.typing && !ctrl_c {
            if let Some(action) = self.type_filter(key, model) {
                return action;
            }
        }
        if ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Char('Q')) {
            if finished {
                return Action::Quit;
            }
            if stopping && ctrl_c {
                return Action::Force;
            }
            if !stopping {
                self.confirm = true;
            }
            return Action::Redraw;
        }
        let Some(model) = model else {
            return Action::Nothing;
        };
        let page = if self.expanded {
            self.detail_rows.max(2) - 1
        } else {
            self.list_rows.max(2) - 1
        } as isize;
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.move_by(model, 1),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(model, -1),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(model, isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_by(model, isize::MAX / 2),
            KeyCode::PageDown if self.expanded => self.scroll_details(page),
            KeyCode::PageUp if self.expanded => self.scroll_details(-page),
            KeyCode::PageDown => self.move_by(model, page),
            KeyCode::PageUp => self.move_by(model, -page),
            KeyCode::Enter => {
                self.expanded = !self.expanded;
                self.detail_scroll = 0;
            }
            KeyCode::Esc if self.expanded => self.expanded = false,
            KeyCode::Char('l') => self.show_logs = !self.show_logs,
            KeyCode::Char('f') => {
                self.follow = true;
                self.reselect(model);
            }
            KeyCode::Char('/') => self.typing = true,
            KeyCode::Char('p') => {
                self.only_path = !self.only_path;
                self.reselect(model);
            }
            KeyCode::Char('s') => {
                self.stream = true;
                return Action::Stream;
            }
            // Back to every stack.
            KeyCode::Esc if !self.filter.is_empty() || self.only_path => {
                self.filter.clear();
                self.only_path = false;
                self.reselect(model);
            }
            KeyCode::Char('?') => self.help = true,
            _ if finished => return Action::Quit,
            _ => return Action::Nothing,
        }
        Action::Redraw
    }
}
