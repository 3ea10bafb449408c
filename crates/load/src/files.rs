//! Reading and writing the seed file: owner-only permissions (it holds token secrets and API
//! keys), written to a temporary file and renamed so an interrupted run never leaves half a file.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use tessera_load::seeds::SeedFile;

/// Reads and checks a seed file.
pub fn load_seeds(path: &Path) -> anyhow::Result<SeedFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    SeedFile::from_json(&text).with_context(|| format!("in {}", path.display()))
}

/// Writes a seed file atomically with mode 0600.
pub fn save_seeds(path: &Path, seeds: &SeedFile) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(seeds.to_json().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
