//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds the files at
//! compile time, and without this cargo does not notice a new file in the folder.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
