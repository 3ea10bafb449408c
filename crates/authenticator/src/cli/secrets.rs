//! Where PINs, passphrases and passwords come from: a file named by `--pin-file` (its first
//! line), standard input with `--password-stdin` (one line per password asked, in order), or a
//! prompt on the terminal without echo. Everything read is wiped on drop.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

/// The sources of secrets for one command.
#[derive(Debug)]
pub struct Secrets {
    pin_file: Option<PathBuf>,
    password_stdin: bool,
}

fn first_line(text: &str) -> Zeroizing<String> {
    Zeroizing::new(
        text.lines()
            .next()
            .unwrap_or("")
            .trim_end_matches('\r')
            .to_owned(),
    )
}

impl Secrets {
    pub fn new(pin_file: Option<PathBuf>, password_stdin: bool) -> Secrets {
        Secrets {
            pin_file,
            password_stdin,
        }
    }

    /// The PIN or passphrase that opens (or, at `init`, will open) the vault.
    pub fn pin(&mut self, prompt: &str) -> Result<Zeroizing<String>> {
        if let Some(path) = &self.pin_file {
            return read_file_line(path);
        }
        prompt_tty(prompt)
    }

    /// A new PIN, asked twice on a terminal.
    pub fn new_pin(
        &mut self,
        file: Option<&std::path::Path>,
        what: &str,
    ) -> Result<Zeroizing<String>> {
        if let Some(path) = file.or(self.pin_file.as_deref()) {
            return read_file_line(path);
        }
        let a = prompt_tty(&format!("new {what}: "))?;
        let b = prompt_tty(&format!("the same {what} again: "))?;
        if a != b {
            bail!("the two entries differ");
        }
        Ok(a)
    }

    /// A password (an import file's, the backup's): the next line of standard input with
    /// `--password-stdin`, else a prompt.
    pub fn password(&mut self, prompt: &str) -> Result<Zeroizing<String>> {
        if self.password_stdin {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading a password from standard input")?;
            if line.is_empty() {
                bail!("standard input ended before the password ({prompt})");
            }
            return Ok(first_line(&line));
        }
        prompt_tty(prompt)
    }
}

fn read_file_line(path: &std::path::Path) -> Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let line = first_line(&text);
    if line.is_empty() {
        bail!("{} is empty", path.display());
    }
    Ok(line)
}

fn prompt_tty(prompt: &str) -> Result<Zeroizing<String>> {
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .context("no terminal to ask on: give the PIN with --pin-file and passwords with --password-stdin")
}
