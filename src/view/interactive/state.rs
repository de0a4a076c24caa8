//! What the user chose to see and how keys change it: the interactive view's state, tested
//! without a terminal.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::event::StackState;
use crate::progress::Model;

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
}

/// Stacks in list order: running ones first (in the order they started), then failed ones,
/// then the rest in plan order.
pub fn order(model: &Model) -> Vec<usize> {
    let mut running: Vec<usize> = (0..model.stacks.len())
        .filter(|&i| model.stacks[i].status == StackState::Deploying)
        .collect();
    running.sort_by_key(|&i| (model.stacks[i].start_time, i));
    let failed = (0..model.stacks.len()).filter(|&i| model.stacks[i].status == StackState::Failed);
    let rest = (0..model.stacks.len()).filter(|&i| {
        !matches!(
            model.stacks[i].status,
            StackState::Deploying | StackState::Failed
        )
    });
    running.into_iter().chain(failed).chain(rest).collect()
}

impl Ui {
    /// The stack the details show: the user's choice, or while following, the current stack.
    pub(super) fn sync(&mut self, model: &Model, order: &[usize]) {
        if self.follow {
            let current = model
                .current_stack
                .as_deref()
                .and_then(|name| model.stack_index(name));
            if current.is_some() {
                self.selected = current;
            }
        }
        if self.selected.is_none_or(|i| i >= model.stacks.len()) {
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
        let order = order(model);
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
                let order = order(model);
                self.sync(model, &order);
                self.scroll_to_selection(&order);
            }
            KeyCode::Char('?') => self.help = true,
            _ if finished => return Action::Quit,
            _ => return Action::Nothing,
        }
        Action::Redraw
    }
}
