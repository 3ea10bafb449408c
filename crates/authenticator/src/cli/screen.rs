//! What draws on the terminal: `show-qr` (a token as a QR code on the alternate screen, so the
//! seed stays out of scrollback and tmux history; hidden on a key press or after 60 s),
//! `codes --watch` (a full-screen table with the seconds left, `/` to search, Enter to copy a
//! code to the clipboard through the terminal, cleared when the code expires), and `clock`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use crossterm::event::{self, Event, KeyCode, KeyEventKind};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use data_encoding::BASE64;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};
use zeroize::Zeroizing;

use super::enroll::{SKEW_WARN, http, skew};
use super::tokens::find_index;
use super::{Secrets, Session};
use crate::clock::now_unix;
use crate::codes::{self, grouped};
use crate::entry::EntryKind;

/// How long `show-qr` shows a code at most.
const SHOW_SECS: u64 = 60;

/// Restores the terminal however the screen ends (a panic, an error, a key).
struct Alternate;

impl Alternate {
    fn enter() -> Result<Alternate> {
        terminal::enable_raw_mode()?;
        execute!(std::io::stdout(), EnterAlternateScreen, cursor::Hide)?;
        Ok(Alternate)
    }
}

impl Drop for Alternate {
    fn drop(&mut self) {
        let _ = execute!(std::io::stdout(), LeaveAlternateScreen, cursor::Show);
        let _ = terminal::disable_raw_mode();
    }
}

pub fn show_qr(path: &Path, secrets: &mut Secrets, name: &str, print: bool) -> Result<()> {
    let interactive = std::io::stdout().is_terminal();
    if !interactive && !print {
        bail!("standard output is not a terminal: add --print to write the QR code there anyway");
    }
    // The PIN is asked for here even if another command unlocked a moment ago: this shows a
    // seed that makes codes on any phone that scans it.
    let s = Session::open(path, secrets)?;
    let e = &s.vault.content.entries[find_index(&s.vault, name)?];
    let uri =
        super::export::entry_uri(e).context("Steam tokens have no QR format other apps read")?;
    let qr =
        Zeroizing::new(crate::qr::terminal(&uri).context("the key URI is too long for a QR code")?);
    let label = e.label();
    if print {
        println!("{}", qr.as_str());
        return Ok(());
    }
    let need = crate::qr::width(&uri).unwrap_or(0);
    let (cols, rows) = terminal::size().unwrap_or((80, 24));
    let lines = qr.lines().count();
    if usize::from(cols) < need || usize::from(rows) < lines + 2 {
        bail!(
            "the QR code needs {need} columns and {} rows; this terminal has {cols} × {rows}",
            lines + 2
        );
    }
    eprintln!(
        "warning: whoever scans this code has a full copy of the token; the server cannot tell it apart"
    );
    let _screen = Alternate::enter()?;
    let mut out = std::io::stdout();
    write!(out, "{label}\r\n")?;
    for line in qr.lines() {
        write!(out, "{line}\r\n")?;
    }
    write!(
        out,
        "Scan it with the new device. Any key hides it (after {SHOW_SECS} s it hides itself).\r\n"
    )?;
    out.flush()?;
    let deadline = now_unix() + SHOW_SECS;
    while now_unix() < deadline {
        if event::poll(Duration::from_millis(250))?
            && let Event::Key(k) = event::read()?
            && k.kind == KeyEventKind::Press
        {
            break;
        }
    }
    Ok(())
}

/// OSC 52: the terminal puts the text on the clipboard (works over SSH, no display needed).
fn osc52(text: &str) -> Result<()> {
    let mut out = std::io::stdout();
    write!(out, "\x1b]52;c;{}\x07", BASE64.encode(text.as_bytes()))?;
    out.flush()?;
    Ok(())
}

pub fn watch(path: &Path, secrets: &mut Secrets, filter: Option<&str>) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!("--watch needs a terminal (use `codes --json` in scripts)");
    }
    let s = Session::open(path, secrets)?;
    let entries: Vec<_> = s
        .vault
        .content
        .live()
        .filter(|e| !matches!(e.kind, EntryKind::Hotp { .. }))
        .cloned()
        .collect();
    // The vault stays readable by other tessera-auth processes while the table is open.
    drop(s);
    let mut search = filter.unwrap_or("").to_owned();
    let mut searching = false;
    let mut state = TableState::default().with_selected(Some(0));
    let mut clear_at: Option<u64> = None;
    let mut message = String::new();
    let mut term = ratatui::init();
    let result = (|| -> Result<()> {
        loop {
            let now = now_unix();
            if clear_at.is_some_and(|t| now >= t) {
                osc52("")?;
                clear_at = None;
                message = "clipboard cleared".into();
            }
            let shown: Vec<_> = entries
                .iter()
                .filter(|e| search.is_empty() || e.matches(&search))
                .filter_map(|e| codes::show(e, now).ok().map(|c| (e, c)))
                .collect();
            if state.selected().is_some_and(|i| i >= shown.len()) {
                state.select(Some(shown.len().saturating_sub(1)));
            }
            term.draw(|f| {
                let [top, table, bottom] = Layout::vertical([
                    Constraint::Length(1),
                    Constraint::Min(1),
                    Constraint::Length(1),
                ])
                .areas(f.area());
                let head = if searching {
                    format!("search: {search}_")
                } else if search.is_empty() {
                    "tessera-auth".into()
                } else {
                    format!("filter: {search}")
                };
                f.render_widget(Paragraph::new(head), top);
                let rows = shown.iter().map(|(e, c)| {
                    let period = match e.kind {
                        EntryKind::Totp { period } => period,
                        _ => 30,
                    };
                    let left = c.seconds_left.unwrap_or(0);
                    let filled = ((left * 10).div_ceil(period.max(1))).min(10) as usize;
                    let next = c.next_code.as_deref().map(grouped).unwrap_or_default();
                    Row::new(vec![
                        Cell::from(c.label.clone()),
                        Cell::from(grouped(c.code.as_deref().unwrap_or(""))),
                        Cell::from(format!(
                            "{}{} {left:>2}s",
                            "█".repeat(filled),
                            "░".repeat(10 - filled)
                        )),
                        Cell::from(next),
                    ])
                });
                let t = Table::new(
                    rows,
                    [
                        Constraint::Fill(1),
                        Constraint::Length(11),
                        Constraint::Length(15),
                        Constraint::Length(11),
                    ],
                )
                .header(
                    Row::new(vec!["token", "code", "left", "next"])
                        .style(Style::new().add_modifier(Modifier::BOLD)),
                )
                .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
                .block(Block::bordered());
                f.render_stateful_widget(t, table, &mut state);
                let help = if message.is_empty() {
                    "↑↓ choose · Enter copy · / search · q quit".to_owned()
                } else {
                    message.clone()
                };
                f.render_widget(Paragraph::new(help), bottom);
            })?;
            if !event::poll(Duration::from_millis(250))? {
                continue;
            }
            let Event::Key(k) = event::read()? else {
                continue;
            };
            if k.kind != KeyEventKind::Press {
                continue;
            }
            if searching {
                match k.code {
                    KeyCode::Enter | KeyCode::Esc => searching = false,
                    KeyCode::Backspace => {
                        search.pop();
                    }
                    KeyCode::Char(c) => search.push(c),
                    _ => {}
                }
                continue;
            }
            match k.code {
                KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                KeyCode::Char('/') => searching = true,
                KeyCode::Down => state.select_next(),
                KeyCode::Up => state.select_previous(),
                KeyCode::Enter => {
                    if let Some((e, c)) = state.selected().and_then(|i| shown.get(i)) {
                        osc52(c.code.as_deref().unwrap_or(""))?;
                        clear_at = Some(now + c.seconds_left.unwrap_or(30));
                        message = format!(
                            "copied the code of {}; cleared in {} s",
                            e.label(),
                            c.seconds_left.unwrap_or(30)
                        );
                    }
                }
                _ => {}
            }
        }
    })();
    if clear_at.is_some() {
        let _ = osc52("");
    }
    ratatui::restore();
    result
}

/// `clock`: this computer's clock against the server's `Date` header.
pub fn clock(path: &Path, secrets: &mut Secrets, server: Option<&str>) -> Result<()> {
    let server = match server {
        Some(s) => s.trim_end_matches('/').to_owned(),
        None => {
            let s = Session::open(path, secrets)?;
            s.vault
                .content
                .backup
                .as_ref()
                .map(|b| b.server.clone())
                .or_else(|| s.vault.content.live().find_map(|e| e.origin.server.clone()))
                .context("no server known: give one with --server URL")?
        }
    };
    let resp = http()?
        .get(format!("{server}/healthz"))
        .send()
        .with_context(|| format!("connecting to {server}"))?;
    let sk = skew(&resp).context("the server sent no Date header")?;
    if sk.abs() > SKEW_WARN {
        println!(
            "warning: this computer's clock is {} s {} {server}: codes may be refused; set the clock right (e.g. timedatectl set-ntp true)",
            sk.abs(),
            if sk > 0 { "behind" } else { "ahead of" }
        );
    } else {
        println!(
            "clock within {} s of {server} (the Date header has whole seconds)",
            sk.abs().max(1)
        );
    }
    Ok(())
}
