//! Command-line parsing tests.

use super::*;
use crate::scenario::unavailable;

#[test]
fn durations_parse_with_units() {
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
    assert!(parse_duration("soon").is_err());
    assert!(parse_duration("5d").is_err());
}

#[test]
fn loopback_flags_become_a_config() {
    let cli = Cli::try_parse_from([
        "bench",
        "loopback",
        "--publishers",
        "2",
        "--subscribers",
        "3",
        "--loss-pct",
        "5",
        "--delay",
        "40ms",
        "--simulcast",
        "--duration",
        "3s",
    ])
    .unwrap();
    let Scenario::Loopback(args) = cli.scenario else {
        panic!("not loopback");
    };
    let c = args.config();
    assert_eq!((c.publishers, c.subscribers), (2, 3));
    assert_eq!(c.duration, Duration::from_secs(3));
    let imp = c.impairment.unwrap();
    assert!((imp.loss - 0.05).abs() < 1e-12);
    assert_eq!(imp.delay, Duration::from_millis(40));
    assert!(c.video.unwrap().simulcast);
    assert!(c.audio.is_some());
}

#[test]
fn default_duration_is_bounded() {
    let cli = Cli::try_parse_from(["bench", "loopback"]).unwrap();
    let Scenario::Loopback(args) = cli.scenario else {
        panic!("not loopback");
    };
    assert_eq!(args.common.duration, Duration::from_secs(30));
    assert!(args.config().impairment.is_none());
}

#[test]
fn every_pending_scenario_has_a_notice() {
    assert!(unavailable("failover").is_none());
    assert!(unavailable("loopback").is_none());
    assert!(unavailable("fanout").is_none());
    assert!(unavailable("lobby").is_none());
}
