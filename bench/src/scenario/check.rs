//! `bench --check-config`: the checks a scenario makes before any load
//! starts (flags, environment, target guard, relay binary, output
//! directories), run without starting a relay, opening a socket or
//! contacting the target. Prints nothing itself; `cli::run` prints
//! `config ok` or the error.

use std::path::Path;

use super::cli::{Cli, Common, Scenario};
use super::relay_cli::RelayArgs;
use super::sfu::{RelaySetup, SfuConfig};
use super::whip_target;
use crate::target::{check_addr, check_target};

/// Checks the parsed command line as `bench` would before loading anything.
pub fn check(cli: &Cli) -> Result<(), String> {
    let text = |e: crate::Error| e.to_string();
    match &cli.scenario {
        Scenario::Loopback(a) => {
            a.config().validate().map_err(text)?;
            outputs(&a.common)
        }
        Scenario::Fanout(a) => relay_scenario(&a.config(), &a.relay, &a.common),
        Scenario::Meeting(a) => relay_scenario(&a.config(false), &a.relay, &a.common),
        Scenario::Audio(a) => relay_scenario(&a.config(true), &a.relay, &a.common),
        Scenario::Lobby(a) => {
            check_target(&a.remote.target, a.remote.allow_remote).map_err(text)?;
            if a.common.svg.is_some() {
                return Err("--svg is not supported by the lobby scenario".into());
            }
            a.config().validate().map_err(text)?;
            outputs(&a.common)
        }
        Scenario::Failover(a) => {
            let config = a.config();
            config.validate().map_err(text)?;
            if a.warmup >= a.common.duration {
                return Err("--warmup must be shorter than --duration".into());
            }
            binary(&config.binary)?;
            outputs(&a.common)
        }
    }
}

fn relay_scenario(config: &SfuConfig, relay: &RelayArgs, common: &Common) -> Result<(), String> {
    let text = |e: crate::Error| e.to_string();
    if let Some(target) = &relay.target {
        check_target(target, relay.allow_remote).map_err(text)?;
        if !(whip_target::is_whip_target(target) && config.scenario == "fanout") {
            return Err("only `fanout --target whip://…` takes a --target".into());
        }
    } else {
        for addr in [relay.relay_control, relay.relay_metrics]
            .into_iter()
            .flatten()
        {
            check_addr(addr, relay.allow_remote).map_err(text)?;
        }
        if let RelaySetup::Spawn { binary: bin, .. } = &config.relay {
            binary(bin)?;
        }
    }
    config.validate().map_err(text)?;
    outputs(common)
}

fn binary(path: &Path) -> Result<(), String> {
    if path.is_file() {
        Ok(())
    } else {
        Err(format!(
            "relay binary {} not found (give --relay-bin)",
            path.display()
        ))
    }
}

/// `--json`/`--svg` must go to existing directories (nothing is written now).
fn outputs(common: &Common) -> Result<(), String> {
    for path in [&common.json, &common.svg].into_iter().flatten() {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(format!(
                "{}: directory {} does not exist",
                path.display(),
                dir.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn checked(args: &[&str]) -> Result<(), String> {
        check(&Cli::try_parse_from(args).map_err(|e| e.to_string())?)
    }

    #[test]
    fn lobby_flags_are_checked_without_a_server() {
        let ok = [
            "bench",
            "lobby",
            "--check-config",
            "--target",
            "ws://172.28.0.11:8080/ws",
            "--allow-remote",
            "--password",
            "p",
        ];
        assert_eq!(checked(&ok), Ok(()));
        let remote = [
            "bench",
            "lobby",
            "--target",
            "ws://192.0.2.1:8080/ws",
            "--password",
            "p",
        ];
        assert!(
            checked(&remote).is_err(),
            "non-loopback needs --allow-remote"
        );
        let nopass = ["bench", "lobby", "--target", "ws://127.0.0.1:8080/ws"];
        assert!(checked(&nopass).unwrap_err().contains("password"));
        let by_name = [
            "bench",
            "lobby",
            "--target",
            "ws://signaling:8080/ws",
            "--allow-remote",
            "--password",
            "p",
        ];
        assert!(checked(&by_name).is_err(), "lobby dials IP addresses only");
    }

    #[test]
    fn relay_scenarios_need_their_binary_and_output_directory() {
        let bin = ["bench", "fanout", "--relay-bin", "/nonexistent/relay"];
        assert!(checked(&bin).unwrap_err().contains("/nonexistent/relay"));
        let json = ["bench", "loopback", "--json", "/nonexistent/dir/r.json"];
        assert!(checked(&json).unwrap_err().contains("/nonexistent/dir"));
        assert_eq!(checked(&["bench", "loopback"]), Ok(()));
    }
}
