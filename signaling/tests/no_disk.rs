//! Patient data never reaches disk or the logs: a real `signaling` process
//! (temporary working directory, HOME and TMPDIR; audit trail to a file;
//! every log level on, as JSON) runs a whole consultation: a clinician logs
//! in over HTTP, a patient joins with a name and an intake answer, drops and
//! resumes with the resume token, the clinician reads the intake, admits and
//! ends the consultation, and the process is stopped with SIGTERM. Then no
//! file under those directories, and neither stdout nor stderr, contains the
//! name, the answer, the password, the session token or the resume token.

mod support;

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;
use support::{Client, action, http};

const PASSWORD: &str = "correct-horse-battery-staple-42";
const NAME: &str = "Philippa Nonesuchworth";
const ANSWER: &str = "recurring migraines since the accident";

fn directory(hash: &str) -> String {
    format!(
        r#"
[[tenant]]
id = "org"
name = "Org"
[[room]]
id = "gp"
tenant = "org"
name = "GP"
intake = [{{ id = "reason", label = "Why are you here?", required = true }}]
[[clinician]]
id = "dr-x"
tenant = "org"
username = "drx@org"
display_name = "Dr X"
password_hash = "{hash}"
"#
    )
}

/// Every regular file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_patient_data_or_secret_reaches_disk_or_logs() {
    let root = std::env::temp_dir().join(format!(
        "anteroom-no-disk-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let (work, home, tmp, etc) = (
        root.join("work"),
        root.join("home"),
        root.join("tmp"),
        root.join("etc"),
    );
    for d in [&work, &home, &tmp, &etc] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    // The directory file lives outside the scanned directories (it holds a
    // password hash by design, not the password).
    let config = etc.join("orgs.toml");
    std::fs::write(
        &config,
        directory(&signaling::auth::hash_password(PASSWORD)),
    )
    .expect("config");

    let mut child = Command::new(env!("CARGO_BIN_EXE_signaling"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--log",
            "trace",
        ])
        .arg("--config")
        .arg(&config)
        .arg("--audit-log")
        .arg(work.join("audit.log"))
        .current_dir(&work)
        .env_clear()
        .env("HOME", &home)
        .env("TMPDIR", &tmp)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start signaling");
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let stdout = child.stdout.take().expect("stdout");
    let (addr_tx, addr_rx) = mpsc::channel();
    let out_reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("listening on http://") {
                let _ = addr_tx.send(a.trim().to_owned());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let addr: SocketAddr =
        tokio::task::spawn_blocking(move || addr_rx.recv_timeout(Duration::from_secs(30)))
            .await
            .expect("join")
            .expect("signaling printed its address")
            .parse()
            .expect("address");

    // Clinician login over HTTP (password and session token on the wire).
    let login = json!({"username": "drx@org", "password": PASSWORD});
    let (status, head, body) = http(addr, "POST", "/api/login", Some(&login)).await;
    assert_eq!(status, 200, "{head}");
    let session: serde_json::Value = serde_json::from_str(&body).expect("json");
    let token = session["token"].as_str().expect("token").to_owned();

    // Patient joins with a name and an answer, drops, resumes.
    let mut patient = Client::connect(addr).await;
    let hello = json!({"type": "hello", "version": protocol::PROTOCOL_VERSION, "role": "patient"});
    patient.send(&hello).await;
    patient.expect_type("welcome").await;
    let join = json!({"type": "join", "room": "gp", "display_name": NAME,
                      "intake": {"reason": ANSWER}});
    patient.send(&join).await;
    let joined = patient.expect_type("joined").await;
    let participant: protocol::ParticipantId =
        serde_json::from_value(joined["participant"].clone()).expect("participant");
    let resume = joined["resume_token"]
        .as_str()
        .expect("resume token")
        .to_owned();
    patient.close().await;
    let mut patient = Client::connect(addr).await;
    patient.send(&hello).await;
    patient.expect_type("welcome").await;
    patient
        .send(&json!({"type": "resume", "token": resume}))
        .await;
    patient.expect_type("joined").await;

    // The clinician reads the intake, admits, ends the consultation.
    let mut doc = Client::connect(addr).await;
    let hello_c = json!({"type": "hello", "version": protocol::PROTOCOL_VERSION,
                         "role": "clinician", "session": token});
    doc.send(&hello_c).await;
    doc.expect_type("welcome").await;
    doc.send(&json!({"type": "subscribe", "request": 1})).await;
    let snapshot = doc.expect_type("queue_snapshot").await;
    assert!(
        snapshot.to_string().contains(NAME),
        "the clinician sees the name"
    );
    doc.send(&action("get_intake", &participant, 2)).await;
    let intake = doc.expect_type("intake").await;
    assert_eq!(intake["answers"]["reason"], ANSWER);
    doc.send(&action("admit", &participant, 3)).await;
    patient.expect_type("admitted").await;
    doc.send(&action("end_consultation", &participant, 4)).await;
    patient.expect_type("consultation_ended").await;
    let (status, ..) = http(addr, "GET", "/metrics", None).await;
    assert_eq!(status, 200);

    // SIGTERM: graceful drain; the process exits by itself.
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    drop((patient, doc));
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join");
    assert!(
        exit.expect("wait").success(),
        "signaling exits 0 after SIGTERM"
    );
    let logs = err_reader.join().expect("stderr") + &out_reader.join().expect("stdout");

    // The checks can fail: the audit file and the logs exist and carry ids.
    let mut written = Vec::new();
    for d in [&work, &home, &tmp] {
        files(d, &mut written);
    }
    let audit = std::fs::read_to_string(work.join("audit.log")).expect("audit file");
    assert!(
        audit.contains("\"admit\"") && audit.contains(participant.as_str()),
        "{audit}"
    );
    assert!(
        logs.contains(participant.as_str()),
        "the logs name the patient by id"
    );
    assert!(logs.lines().count() > 10, "trace logging is on");

    let secrets = [
        ("patient name", NAME),
        ("intake answer", ANSWER),
        ("password", PASSWORD),
        ("session token", token.as_str()),
        ("resume token", resume.as_str()),
    ];
    for (what, secret) in secrets {
        assert!(!logs.contains(secret), "the {what} is in the logs");
        for f in &written {
            let bytes = std::fs::read(f).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(secret), "the {what} is in {}", f.display());
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}
