//! Prints the Argon2id PHC hash of a password read from standard input, for
//! the `password_hash` field of the directory file (docs/accounts.md):
//!
//! ```text
//! cargo run --release -p signaling --example hash_password
//! ```
//!
//! The password is read from stdin (first line), never from the command line,
//! so it does not end up in shell history or the process list.

use std::io::BufRead;

fn main() -> anyhow::Result<()> {
    eprintln!("Password (at least 12 characters), then Enter:");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    signaling::auth::check_password_policy(password)?;
    println!("{}", signaling::auth::hash_password(password));
    Ok(())
}
