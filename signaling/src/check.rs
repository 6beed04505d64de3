//! `signaling --check-config`: everything the service would refuse at start,
//! found without starting it. It parses and validates the flags and
//! environment (including `--redis-url`'s syntax), loads the directory file,
//! loads the TLS certificate and key (and checks they belong together),
//! checks the audit log's place and that the relay secret is set where
//! relays must register. It binds no socket, connects nowhere and writes
//! nothing, so a deployment (e.g. docker-compose.yml) can be checked on any
//! machine.

use std::path::Path;

use crate::Error;
use crate::config::Config;
use crate::directory::Directory;

/// Checks `config` as a start would; `Ok` means the service would start
/// (given its port is free and Redis, if any, is reachable).
pub fn check_config(config: &Config) -> Result<(), Error> {
    config.validate()?;
    if let Some(path) = &config.config {
        Directory::load(path)?;
    }
    config.tls.load()?;
    if let Some(path) = &config.audit_log {
        check_audit_log(path)?;
    }
    if !config.dev && config.relay_secret.is_none() {
        return Err(Error::Config(
            "no relay secret: set ANTEROOM_RELAY_SECRET (16+ bytes, the same on every relay), \
             or relays cannot register and no call can be placed"
                .into(),
        ));
    }
    Ok(())
}

/// The audit log must be an appendable file, or a new file in an existing
/// directory. Opens an existing file for appending (which changes nothing);
/// creates nothing.
fn check_audit_log(path: &Path) -> Result<(), Error> {
    let bad = |why: String| {
        Err(Error::Config(format!(
            "--audit-log {}: {why}",
            path.display()
        )))
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {
            if let Err(e) = std::fs::OpenOptions::new().append(true).open(path) {
                return bad(format!("cannot append: {e}"));
            }
            Ok(())
        }
        Ok(_) => bad("not a regular file".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if parent.is_dir() {
                Ok(())
            } else {
                bad(format!("directory {} does not exist", parent.display()))
            }
        }
        Err(e) => bad(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["signaling"];
        all.extend_from_slice(args);
        Config::parse_args(all).expect("flags parse")
    }

    #[test]
    fn dev_passes_and_production_needs_the_relay_secret() {
        assert!(check_config(&config(&["--dev"])).is_ok());
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/orgs.toml");
        let e = check_config(&config(&["--config", example])).unwrap_err();
        assert!(e.to_string().contains("ANTEROOM_RELAY_SECRET"), "{e}");
        let ok = config(&["--config", example, "--relay-secret", "0123456789abcdef"]);
        assert!(check_config(&ok).is_ok());
    }

    #[test]
    fn a_missing_directory_file_or_audit_directory_is_named() {
        let c = config(&[
            "--config",
            "/nonexistent/orgs.toml",
            "--relay-secret",
            "0123456789abcdef",
        ]);
        let e = check_config(&c).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/orgs.toml"), "{e}");
        let c = config(&["--dev", "--audit-log", "/nonexistent/dir/audit.jsonl"]);
        let e = check_config(&c).unwrap_err().to_string();
        assert!(e.contains("--audit-log"), "{e}");
        assert!(!Path::new("/nonexistent").exists());
    }
}
