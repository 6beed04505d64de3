//! Tests of the failover outcome and config checks.

use super::*;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[test]
fn gaps_give_nearest_rank_percentiles_and_count_the_unrecovered() {
    let mut gaps: Vec<Option<Duration>> = (1..=20).map(|i| Some(ms(i * 100))).collect();
    gaps.push(None);
    let o = FailoverOutcome::from_gaps(&gaps, Duration::from_millis(3), ms(900));
    assert_eq!((o.affected, o.recovered), (21, 20));
    assert_eq!(o.gap_p50_ms, Some(1000.0));
    assert_eq!(o.gap_p95_ms, Some(1900.0));
    assert_eq!(o.gap_max_ms, Some(2000.0));
    assert!(o.table().contains("recovered on relay B  20"));
}

#[test]
fn no_recovery_reports_no_gap_figures() {
    let o = FailoverOutcome::from_gaps(&[None, None], Duration::ZERO, Duration::ZERO);
    assert_eq!((o.affected, o.recovered), (2, 0));
    assert_eq!(o.gap_max_ms, None);
    assert!(o.table().contains("- / - / -"));
}

#[test]
fn refuses_rooms_without_subscribers_or_time_after_the_kill() {
    let base = FailoverConfig {
        rooms: 1,
        subscribers: 2,
        warmup: Duration::from_secs(2),
        after: Duration::from_secs(5),
        audio: Some(AudioShape::default()),
        video: None,
        threads: 1,
        join_rate: 100,
        binary: PathBuf::from("relay"),
        workers: None,
        log_dir: None,
        kill_command: None,
        secret: "0123456789abcdef".into(),
    };
    assert_eq!(base.validate().ok(), Some(3));
    let none = FailoverConfig {
        subscribers: 0,
        ..base.clone()
    };
    assert!(none.validate().is_err());
    let short = FailoverConfig {
        after: Duration::from_millis(500),
        ..base
    };
    assert!(short.validate().is_err());
}
