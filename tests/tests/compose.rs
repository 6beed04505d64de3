//! docker-compose.yml cannot rot: every service that runs one of our binaries
//! has its command line, with the environment the file gives it (variables
//! interpolated as `docker compose` does, volumes mapped back to the files in
//! this repository), accepted by the real binary's `--check-config`, and every
//! variable it sets is one the binary knows. Every service has a health check
//! that asks the service's own port; Redis keeps nothing on disk; the
//! Dockerfile ships every binary the file runs, as a non-root user.
//!
//! No Docker engine is needed (none runs in CI): the binaries come from the
//! workspace build (`scripts/test` builds it first).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};
use tests::process::binary;
use yaml_rust2::{Yaml, YamlLoader};

/// What an operator's `.env` holds in this test (compose refuses to start
/// without the relay secret).
const DOT_ENV: [(&str, &str); 1] = [(
    "ANTEROOM_RELAY_SECRET",
    "compose-test-relay-secret-0123456789",
)];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// One service of the file, interpolated.
#[derive(Debug)]
struct Service {
    name: String,
    command: Vec<String>,
    env: BTreeMap<String, String>,
    /// (host path, container path) of bind mounts.
    volumes: Vec<(PathBuf, String)>,
    yaml: Yaml,
}

/// `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
/// `${VAR?error}` and `$$`, as docker compose interpolates them.
fn interpolate(text: &str, vars: &BTreeMap<&str, &str>) -> Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some(body) = rest.strip_prefix('{') else {
            bail!("{text:?}: write variables as ${{NAME}}");
        };
        let end = body
            .find('}')
            .with_context(|| format!("{text:?}: unclosed ${{"))?;
        let (expr, after) = (&body[..end], &body[end + 1..]);
        let split = expr.find([':', '-', '?']).unwrap_or(expr.len());
        let (name, op) = expr.split_at(split);
        let value = vars.get(name).copied();
        let set = value.is_some_and(|v| !v.is_empty());
        let resolved = match op {
            "" => value.unwrap_or_default().to_owned(),
            _ if op.starts_with(":-") => if set {
                value.unwrap_or_default()
            } else {
                &op[2..]
            }
            .to_owned(),
            _ if op.starts_with('-') => value.unwrap_or(&op[1..]).to_owned(),
            _ if op.starts_with(":?") && !set => bail!("{name} is required: {}", &op[2..]),
            _ if op.starts_with('?') && value.is_none() => {
                bail!("{name} is required: {}", &op[1..])
            }
            _ if op.starts_with(":?") || op.starts_with('?') => {
                value.unwrap_or_default().to_owned()
            }
            _ => bail!("{text:?}: unsupported interpolation {op:?}"),
        };
        out.push_str(&resolved);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn load(vars: &BTreeMap<&str, &str>) -> Result<Vec<Service>> {
    let path = repo().join("docker-compose.yml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let docs = YamlLoader::load_from_str(&text).context("docker-compose.yml is not YAML")?;
    let doc = docs.first().context("empty docker-compose.yml")?;
    let services = doc["services"].as_hash().context("no services")?;
    let mut out = Vec::new();
    for (name, svc) in services {
        let name = name.as_str().context("service name")?.to_owned();
        let words = |y: &Yaml| -> Result<Vec<String>> {
            y.as_vec()
                .with_context(|| format!("{name}: command must be a list"))?
                .iter()
                .map(|w| interpolate(&scalar(w).context("scalar")?, vars))
                .collect()
        };
        let command = if svc["command"].is_badvalue() {
            Vec::new()
        } else {
            words(&svc["command"])?
        };
        let mut env = BTreeMap::new();
        if let Some(map) = svc["environment"].as_hash() {
            for (k, v) in map {
                let key = k.as_str().context("env key")?.to_owned();
                let value = interpolate(&scalar(v).unwrap_or_default(), vars)
                    .with_context(|| format!("{name}: {key}"))?;
                env.insert(key, value);
            }
        } else if !svc["environment"].is_badvalue() {
            bail!("{name}: write environment as a mapping");
        }
        let mut volumes = Vec::new();
        for v in svc["volumes"]
            .as_vec()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let v = interpolate(v.as_str().context("short volume syntax")?, vars)?;
            let mut parts = v.split(':');
            let (host, container) = (parts.next().unwrap_or_default(), parts.next());
            let container = container.with_context(|| format!("{name}: volume {v}"))?;
            volumes.push((repo().join(host), container.to_owned()));
        }
        out.push(Service {
            name,
            command,
            env,
            volumes,
            yaml: svc.clone(),
        });
    }
    Ok(out)
}

fn vars() -> BTreeMap<&'static str, &'static str> {
    DOT_ENV.into_iter().collect()
}

fn ours(s: &Service) -> bool {
    matches!(
        s.command.first().map(String::as_str),
        Some("signaling" | "relay" | "bench")
    )
}

/// Container paths in `text` replaced by the bind-mounted files of this repository.
fn on_host(s: &Service, text: &str) -> String {
    s.volumes
        .iter()
        .fold(text.to_owned(), |t, (host, container)| {
            t.replace(container.as_str(), &host.display().to_string())
        })
}

fn run_check(s: &Service) -> Result<()> {
    let bin = binary(&s.command[0])?;
    let mut cmd = Command::new(&bin);
    cmd.args(s.command[1..].iter().map(|a| on_host(s, a)))
        .arg("--check-config")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in &s.env {
        cmd.env(k, on_host(s, v));
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && stdout.contains("config ok"),
        "service {}: `{} --check-config` refused its configuration ({}):\n{stdout}{}",
        s.name,
        s.command.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // clap ignores unknown variables: a misspelt one would pass silently.
    let words = s.command.iter().take_while(|w| !w.starts_with('-'));
    let help = Command::new(&bin)
        .args(words.skip(1))
        .arg("--help")
        .env_clear()
        .output()?;
    let help = String::from_utf8_lossy(&help.stdout);
    for key in s.env.keys() {
        ensure!(
            help.contains(&format!("env: {key}")),
            "service {}: {key} is not a variable of {}",
            s.name,
            s.command[0]
        );
    }
    Ok(())
}

#[test]
fn every_service_command_line_is_accepted_by_the_real_binary() -> Result<()> {
    let services = load(&vars())?;
    let checked: Vec<&str> = services
        .iter()
        .filter(|s| ours(s))
        .map(|s| s.name.as_str())
        .collect();
    ensure!(
        checked.len() >= 6,
        "expected two signaling nodes, three relays and bench: {checked:?}"
    );
    for s in services.iter().filter(|s| ours(s)) {
        run_check(s)?;
    }
    Ok(())
}

#[test]
fn the_topology_is_two_signaling_nodes_and_relays_in_two_regions() -> Result<()> {
    let services = load(&vars())?;
    let with = |bin: &'static str| {
        services
            .iter()
            .filter(move |s| s.command.first().is_some_and(|c| c == bin))
    };
    let signaling: Vec<&Service> = with("signaling").collect();
    ensure!(signaling.len() == 2, "two signaling nodes");
    let mut regions = BTreeMap::<String, usize>::new();
    for relay in with("relay") {
        *regions
            .entry(relay.env["ANTEROOM_RELAY_REGION"].clone())
            .or_default() += 1;
        // Each relay dials a signaling service of this file, on its port.
        let url = &relay.env["ANTEROOM_RELAY_SIGNALING"];
        let hostport = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap_or_default();
        let target = signaling
            .iter()
            .find(|s| hostport == format!("{}:{}", s.name, listen_port(s)));
        ensure!(
            target.is_some(),
            "{}: {url} is not a signaling service",
            relay.name
        );
    }
    let mut counts: Vec<usize> = regions.values().copied().collect();
    counts.sort_unstable();
    ensure!(
        counts == [1, 2],
        "relays: two in one region, one in another: {regions:?}"
    );
    // bench dials an IP address: it must be a signaling node's fixed one.
    let bench = with("bench").next().context("a bench service")?;
    ensure!(
        !bench.yaml["profiles"].is_badvalue(),
        "bench runs only under a profile"
    );
    let target = bench
        .command
        .iter()
        .skip_while(|w| *w != "--target")
        .nth(1)
        .context("--target")?;
    let ips: Vec<String> = signaling
        .iter()
        .filter_map(|s| scalar(&s.yaml["networks"]["anteroom"]["ipv4_address"]))
        .map(|ip| format!("ws://{ip}:"))
        .collect();
    ensure!(
        ips.iter().any(|ip| target.starts_with(ip)),
        "bench --target {target} is no signaling node ({ips:?})"
    );
    Ok(())
}

fn listen_port(s: &Service) -> String {
    let key = if s.command[0] == "signaling" {
        "ANTEROOM_LISTEN"
    } else {
        "ANTEROOM_RELAY_METRICS_LISTEN"
    };
    s.env
        .get(key)
        .and_then(|a| a.rsplit(':').next())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn every_service_has_a_health_check_and_redis_keeps_nothing_on_disk() -> Result<()> {
    for s in load(&vars())? {
        let hc = &s.yaml["healthcheck"];
        ensure!(!hc.is_badvalue(), "service {} has no healthcheck", s.name);
        if hc["disable"].as_bool() == Some(true) {
            // Only one-shot jobs (bench) may go without, and only under a profile.
            ensure!(
                !s.yaml["profiles"].is_badvalue(),
                "{}: health check disabled",
                s.name
            );
            ensure!(
                s.yaml["restart"].as_str() == Some("no"),
                "{}: not a one-shot job",
                s.name
            );
            continue;
        }
        let test: Vec<String> = hc["test"]
            .as_vec()
            .context("healthcheck.test list")?
            .iter()
            .filter_map(scalar)
            .collect();
        ensure!(
            test.first().map(String::as_str) == Some("CMD") && test.len() > 1,
            "{}: {test:?}",
            s.name
        );
        if ours(&s) {
            let url = format!("http://127.0.0.1:{}/readyz", listen_port(&s));
            ensure!(
                test.contains(&url) && test[1] == "curl",
                "{}: health check {test:?} should get {url}",
                s.name
            );
        } else if s.name == "redis" {
            ensure!(test == ["CMD", "redis-cli", "ping"], "redis: {test:?}");
            ensure!(
                s.command.windows(2).any(|w| w == ["--save", ""]),
                "redis: --save \"\" (no RDB)"
            );
            ensure!(
                s.command.windows(2).any(|w| w == ["--appendonly", "no"]),
                "redis: --appendonly no"
            );
            ensure!(
                s.yaml["volumes"].is_badvalue(),
                "redis: no volumes (nothing persisted)"
            );
        }
    }
    Ok(())
}

#[test]
fn the_dockerfile_ships_every_binary_as_a_non_root_user() -> Result<()> {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile"))?;
    for s in load(&vars())?.iter().filter(|s| ours(s)) {
        ensure!(
            dockerfile.contains(&format!("target/production/{}", s.command[0])),
            "Dockerfile lacks {}",
            s.command[0]
        );
    }
    ensure!(dockerfile.contains("FROM debian:"), "Debian runtime image");
    let user = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .context("a USER line")?;
    ensure!(
        !user.starts_with("root") && !user.starts_with('0'),
        "runs as {user}"
    );
    Ok(())
}

/// The value after `flag` in a command line.
fn flag<'a>(command: &'a [String], flag: &str) -> Option<&'a str> {
    let at = command.iter().position(|w| w == flag)?;
    command.get(at + 1).map(String::as_str)
}

#[test]
fn the_bench_logs_in_to_a_room_and_account_of_the_mounted_directory() -> Result<()> {
    use argon2::{Argon2, PasswordHash, PasswordVerifier as _};
    let services = load(&vars())?;
    let bench = services
        .iter()
        .find(|s| s.name == "bench")
        .context("bench")?;
    let node = services
        .iter()
        .find(|s| s.name == "signaling-a")
        .context("signaling-a")?;
    let directory = on_host(node, &node.env["ANTEROOM_CONFIG"]);
    let toml = std::fs::read_to_string(&directory).with_context(|| directory.clone())?;
    let room = flag(&bench.command, "--room").context("--room")?;
    ensure!(
        toml.contains(&format!("id = \"{room}\"")),
        "no room {room} in {directory}"
    );
    let user = flag(&bench.command, "--username").context("--username")?;
    let block = toml
        .split("[[clinician]]")
        .find(|b| b.contains(&format!("username = \"{user}\"")))
        .with_context(|| format!("no clinician {user} in {directory}"))?;
    let hash = block
        .lines()
        .find_map(|l| l.strip_prefix("password_hash = \""))
        .and_then(|h| h.strip_suffix('"'))
        .context("password_hash")?;
    let password = &bench.env["BENCH_CLINICIAN_PASSWORD"];
    let parsed = PasswordHash::new(hash).map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        "the bench's default password does not match {user}'s hash in {directory}"
    );
    Ok(())
}

#[test]
fn interpolation_follows_compose() -> Result<()> {
    let vars: BTreeMap<&str, &str> = [("SET", "v"), ("EMPTY", "")].into_iter().collect();
    assert_eq!(interpolate("a${SET}b", &vars)?, "avb");
    assert_eq!(
        interpolate("${UNSET:-d}|${EMPTY:-d}|${EMPTY-d}", &vars)?,
        "d|d|"
    );
    assert_eq!(interpolate("$${SET}", &vars)?, "${SET}");
    assert!(interpolate("${UNSET:?needed}", &vars).is_err());
    assert!(interpolate("${EMPTY:?needed}", &vars).is_err());
    assert!(interpolate("$SET", &vars).is_err());
    // The file refuses to start without the relay secret.
    assert!(load(&BTreeMap::new()).is_err());
    Ok(())
}
