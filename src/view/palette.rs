//! The one palette: what each role looks like, for text on a terminal (console) and for the
//! full-screen view (ratatui). With colour off, nothing is styled.

use console::Style as TextStyle;
use ratatui::style::{Color, Modifier, Style};

use crate::event::StackState;

/// What a piece of text means; the palette decides how it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Done well: deployed, created.
    Ok,
    /// Failed.
    Fail,
    /// Needs attention: blocked, warnings, cancelling.
    Warn,
    /// Running now.
    Active,
    /// Background: waiting, skipped, details.
    Dim,
    /// Headings.
    Bold,
}

impl Role {
    /// The role of a stack's state mark.
    pub fn of(state: StackState) -> Role {
        match state {
            StackState::Deployed => Role::Ok,
            StackState::Deploying => Role::Active,
            StackState::Failed => Role::Fail,
            StackState::Blocked => Role::Warn,
            StackState::Pending | StackState::Skipped => Role::Dim,
        }
    }

    fn text_style(self) -> TextStyle {
        let s = TextStyle::new();
        match self {
            Role::Ok => s.green(),
            Role::Fail => s.red(),
            Role::Warn => s.yellow(),
            Role::Active => s.cyan(),
            Role::Dim => s.dim(),
            Role::Bold => s.bold(),
        }
    }

    fn screen_style(self) -> Style {
        let s = Style::new();
        match self {
            Role::Ok => s.fg(Color::Green),
            Role::Fail => s.fg(Color::Red),
            Role::Warn => s.fg(Color::Yellow),
            Role::Active => s.fg(Color::Cyan),
            Role::Dim => s.fg(Color::DarkGray),
            Role::Bold => s.add_modifier(Modifier::BOLD),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    pub enabled: bool,
}

impl Palette {
    pub fn new(enabled: bool) -> Self {
        Palette { enabled }
    }

    /// `text` styled for a terminal (ANSI), or as it is with colour off.
    pub fn paint(&self, role: Role, text: &str) -> String {
        if self.enabled {
            role.text_style()
                .force_styling(true)
                .apply_to(text)
                .to_string()
        } else {
            text.to_owned()
        }
    }

    /// The ratatui style of a role (none with colour off; bold stays, it is not a colour).
    pub fn style(&self, role: Role) -> Style {
        if self.enabled || role == Role::Bold {
            role.screen_style()
        } else {
            Style::new()
        }
    }

    pub fn green(&self, text: &str) -> String {
        self.paint(Role::Ok, text)
    }
    pub fn red(&self, text: &str) -> String {
        self.paint(Role::Fail, text)
    }
    pub fn yellow(&self, text: &str) -> String {
        self.paint(Role::Warn, text)
    }
    pub fn cyan(&self, text: &str) -> String {
        self.paint(Role::Active, text)
    }
    pub fn dim(&self, text: &str) -> String {
        self.paint(Role::Dim, text)
    }
    pub fn bold(&self, text: &str) -> String {
        self.paint(Role::Bold, text)
    }

    /// A stack's state mark (`✓`, `→`, …) in its colour.
    pub fn mark(&self, state: StackState) -> String {
        self.paint(Role::of(state), state.symbol())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_only_when_enabled() {
        assert_eq!(Palette::new(false).red("x"), "x");
        assert_eq!(Palette::new(true).red("x"), "\x1b[31mx\x1b[0m");
        assert_eq!(Palette::new(true).green("x"), "\x1b[32mx\x1b[0m");
        assert_eq!(Palette::new(false).style(Role::Fail), Style::new());
    }
}
