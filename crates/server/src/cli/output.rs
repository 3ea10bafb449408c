//! What every admin command shares: the opened service and actor, printing a result as JSON or as
//! text, aligned tables, times, and reading a password from stdin.
//!
//! Everything a command prints on stdout goes through [`Ctx::emit`], so `--json` means the same
//! everywhere and a closed pipe (`tessera audit list | head`) ends the command quietly.

use std::fmt::{self, Write as _};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::Arc;

use anyhow::Context as _;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::service::{Actor, Error, Service};

/// An opened installation, the acting operator and the output mode.
#[derive(Debug)]
pub struct Ctx {
    pub service: Arc<Service>,
    pub actor: Actor,
    /// `--json`: print the result as JSON instead of text.
    pub json: bool,
}

impl Ctx {
    /// Prints `value` as pretty JSON with `--json`; otherwise prints what `human` writes.
    pub fn emit<T: Serialize + ?Sized>(
        &self,
        value: &T,
        human: impl FnOnce(&mut String, &T) -> fmt::Result,
    ) -> anyhow::Result<()> {
        let text = if self.json {
            let mut text =
                serde_json::to_string_pretty(value).context("cannot serialise the result")?;
            text.push('\n');
            text
        } else {
            let mut text = String::new();
            human(&mut text, value).context("cannot format the result")?;
            text
        };
        write_stdout(&text)
    }
}

/// What every `list` command prints with `--json`: one object, whatever the resource, so a script
/// reads each the same way (`.items[]`, `.total`).
#[derive(Debug, Serialize)]
pub struct Listing<'a, T> {
    /// The entries shown, in the order of the text output.
    pub items: &'a [T],
    /// How many entries match in all; more than `items` holds when `--limit`/`--offset` page.
    pub total: i64,
}

impl<'a, T> Listing<'a, T> {
    /// A listing of `items` out of `total`.
    pub fn page(items: &'a [T], total: i64) -> Listing<'a, T> {
        Listing { items, total }
    }

    /// A listing that shows every entry there is.
    pub fn all(items: &'a [T]) -> Listing<'a, T> {
        Listing {
            items,
            total: i64::try_from(items.len()).unwrap_or(i64::MAX),
        }
    }
}

/// Writes to stdout. A reader that went away (`| head`) is not an error of this command.
pub(crate) fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

/// An input the CLI itself refuses before calling the service, reported as `invalid_input` like
/// the service's own checks.
pub fn invalid(message: impl Into<String>) -> anyhow::Error {
    Error::Invalid(crate::msg::Msg::text(message)).into()
}

/// Makes stored text safe to print on a terminal: control characters (which could move the
/// cursor or recolour the screen, e.g. in a username an anonymous caller typed) become `\u{..}`.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// `-` for an empty value, the cleaned text otherwise.
pub fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        clean(text)
    }
}

/// A time for people: RFC 3339 in UTC.
pub fn time(t: UnixTime) -> String {
    crate::clock::rfc3339(t)
}

/// An optional time, `never` when absent.
pub fn time_or_never(t: Option<UnixTime>) -> String {
    t.map_or_else(|| "never".to_owned(), time)
}

pub fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Columns aligned with spaces; the last column is not padded.
#[derive(Debug)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; cells are cleaned of control characters here.
    pub fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        self.rows
            .push(cells.into_iter().map(|c| clean(&c)).collect());
    }

    pub fn render(&self, out: &mut String) -> fmt::Result {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let width = widths.get(i).copied().unwrap_or(0);
                    write!(line, "{cell:<width$}  ")?;
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Reads a password from the first line of stdin, without its line ending. Never from an
/// argument: arguments are visible to every local user in the process list.
pub fn read_password(username: &str) -> anyhow::Result<Zeroizing<String>> {
    read_secret_line(&format!("Password for {}", clean(username)), "password")
}

/// Reads a backup's passphrase from the first line of stdin (as [`read_password`]).
pub fn read_passphrase() -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let line = read_secret_line("Backup passphrase", "passphrase")?;
    if line.is_empty() {
        return Err(invalid("passphrase: the line on stdin is empty"));
    }
    Ok(Zeroizing::new(line.as_bytes().to_vec()))
}

fn read_secret_line(prompt: &str, what: &str) -> anyhow::Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        // No echo control without another dependency: say so rather than surprise anyone.
        eprint!("{prompt} (the text you type is visible; end with Enter): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = Zeroizing::new(String::new());
    let read = stdin
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("cannot read the {what} from stdin"))?;
    if read == 0 {
        return Err(invalid(format!(
            "{what}: expected one line on stdin, e.g. printf '%s\\n' \"$SECRET\" | tessera ..."
        )));
    }
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_escapes_control_characters() {
        assert_eq!(clean("alice"), "alice");
        assert_eq!(clean("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(or_dash(""), "-");
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["ID", "NAME"]);
        t.row(["1".to_owned(), "alice".to_owned()]);
        t.row(["100".to_owned(), "b".to_owned()]);
        let mut out = String::new();
        t.render(&mut out).unwrap();
        assert_eq!(out, "ID   NAME\n1    alice\n100  b\n");
    }
}
