//! The supervisor's files, loaded as they ship, by the real Prometheus
//! server (Debian `prometheus`): the scrape config pointed at a test
//! instance, calls driven by SIPp to queues served by registered test
//! agents, then every alert rule (as Prometheus loaded it) and every
//! dashboard panel's expression run through Prometheus's HTTP API: each
//! parses, and each panel returns data. With Chromium installed, the
//! dashboard's panels are also drawn from the same queries to
//! `target/dashboard/centralita.png` (the README's picture).
//!
//! Skipped with a printed reason when prometheus or sipp is missing;
//! failed instead under CENTRALITA_REQUIRE_INTEROP=1.
//! `CENTRALITA_DASHBOARD_CALLS` sets how many calls SIPp places (30 by
//! default, one a second).

mod common;

use common::phone::{AgentPhone, Answer};
use common::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A Prometheus server of the test's own, stopped (by PID) when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The shipped `config/prometheus/` files, the target and the intervals
/// changed (the scrape every second, not every 15), in a directory of
/// their own; Prometheus started on them.
async fn start_prometheus(target: SocketAddr) -> Prometheus {
    let dir = std::env::temp_dir().join(format!("centralita-prom-{:x}", rand_u64()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let shipped = Path::new(ROOT).join("config/prometheus");
    let config = std::fs::read_to_string(shipped.join("prometheus.yml")).expect("prometheus.yml");
    assert_eq!(
        config.matches("127.0.0.1:8080").count(),
        1,
        "the shipped scrape config names the default address once"
    );
    let config = config
        .replace("127.0.0.1:8080", &target.to_string())
        .replace("15s", "1s");
    std::fs::write(dir.join("prometheus.yml"), config).expect("config written");
    std::fs::copy(shipped.join("alerts.yml"), dir.join("alerts.yml")).expect("alerts copied");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_tcp_port())
        .parse()
        .expect("addr");
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus starts");
    let prom = Prometheus { child, addr, dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok()
            && http_send(addr, "GET", "/-/ready", &[], None).await.status == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus not ready in 30 s: {}",
            std::fs::read_to_string(prom.dir.join("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    prom
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GET a Prometheus API path; its JSON.
async fn api(prom: &Prometheus, path: &str) -> Value {
    let r = http_send(prom.addr, "GET", path, &[], None).await;
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
}

async fn query(prom: &Prometheus, expr: &str) -> Value {
    api(prom, &format!("/api/v1/query?query={}", encode(expr))).await
}

/// The dashboard's variables as a panel's query would have them.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("${__rate_interval}", "1m")
        .replace("$__range", "5m")
        .replace("$__interval", "15s")
        .replace("${queue:regex}", ".*")
        .replace("${queue}", ".*")
        .replace("$queue", ".*")
}

/// A panel: its title, unit and targets (expression, legend).
struct Panel {
    title: String,
    unit: String,
    targets: Vec<(String, String)>,
}

fn panels(v: &Value, out: &mut Vec<Panel>) {
    for p in v["panels"].as_array().into_iter().flatten() {
        if p["type"] == "row" {
            panels(p, out);
            continue;
        }
        let targets = p["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                let expr = t["expr"].as_str()?;
                Some((
                    expr.to_string(),
                    t["legendFormat"].as_str().unwrap_or("").to_string(),
                ))
            })
            .collect();
        out.push(Panel {
            title: p["title"].as_str().unwrap_or("").to_string(),
            unit: p["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            targets,
        });
    }
}

/// `promtool` (with the server) checks the scrape config and the rules,
/// and runs the rules' own tests (each alert fires and stays quiet).
#[test]
fn promtool_checks_the_shipped_config_rules_and_rule_tests() {
    if !peer_available("promtool", "--version", "prometheus") {
        return;
    }
    let dir = Path::new(ROOT).join("config/prometheus");
    for args in [
        &["check", "config", "prometheus.yml"][..],
        &["check", "rules", "alerts.yml"],
        &["test", "rules", "alerts.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool runs");
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_loads_the_shipped_files_and_every_panel_and_alert_query_works() {
    if !peer_available("prometheus", "--version", "prometheus")
        || !peer_available("sipp", "-v", "sip-tester")
    {
        return;
    }
    let server = start_server_tuned(
        |c| {
            for a in c.agents.values_mut() {
                a.wrap_up_secs = 2;
            }
        },
        Default::default(),
    )
    .await;
    let prom = start_prometheus(server.http_addr).await;
    let started = Instant::now();

    // The rules loaded as shipped.
    let rules = api(&prom, "/api/v1/rules").await;
    let alerts: Vec<(String, String)> = rules["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| {
            Some((
                r["name"].as_str()?.to_string(),
                r["query"].as_str()?.to_string(),
            ))
        })
        .collect();
    assert!(alerts.len() >= 7, "alert rules loaded: {rules}");

    // Ana (software) and Bruno (hardware) registered and ready; SIPp
    // callers to both queues, one a second, each hanging up after ~9 s.
    let ana = AgentPhone::ready(&server, "ana").await;
    let bruno = AgentPhone::ready(&server, "bruno").await;
    ana.set_answer(Answer::Auto);
    bruno.set_answer(Answer::Auto);
    let calls: u32 = std::env::var("CENTRALITA_DASHBOARD_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let work = prom.dir.join("sipp");
    std::fs::create_dir_all(&work).expect("sipp dir");
    std::fs::write(work.join("queues.csv"), "SEQUENTIAL\n201;\n202;\n201;\n").expect("csv");
    let sip = server.sip_addr.to_string();
    let scenario = format!("{ROOT}/tests/sipp/uac_queue.xml");
    let limit = u64::from(calls) + 60;
    let sipp_dir = work.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("sipp")
            .args([
                sip.as_str(),
                "-sf",
                &scenario,
                "-inf",
                "queues.csv",
                "-i",
                "127.0.0.1",
                "-p",
                &free_tcp_port().to_string(),
                "-mi",
                "127.0.0.1",
                "-mp",
                &(free_tcp_port() & !1).to_string(),
                "-m",
                &calls.to_string(),
                "-r",
                "1",
                "-l",
                "12",
                "-nostdin",
                "-timeout",
                &format!("{limit}s"),
                "-timeout_error",
            ])
            .current_dir(&sipp_dir)
            .output()
    })
    .await
    .expect("join")
    .expect("sipp runs");
    let sipp_text = String::from_utf8_lossy(&out.stdout).to_string();
    // Every call ends (answered or abandoned), with a BYE SIPp sent.
    let text = server.metrics.render();
    let answered = metric(&text, "centralita_queue_answered_total{queue=\"software\"}")
        + metric(&text, "centralita_queue_answered_total{queue=\"hardware\"}");
    assert!(
        answered >= 2.0,
        "some calls answered: {answered}\n{sipp_text}"
    );

    // Let Prometheus scrape the end of the run.
    let scrapes = Duration::from_secs(5);
    tokio::time::sleep(scrapes).await;
    let up = query(&prom, "up{job=\"centralita\"}").await;
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "scraped: {up}");

    // Every alert expression parses and evaluates.
    for (name, expr) in &alerts {
        let r = query(&prom, expr).await;
        assert_eq!(r["status"], "success", "alert {name}: {expr}: {r}");
    }

    // Every panel: each expression parses, and the panel returns data.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/config/grafana/centralita.json"))
            .expect("dashboard"),
    )
    .expect("dashboard JSON");
    let mut all = Vec::new();
    panels(&dashboard, &mut all);
    assert!(all.len() >= 15, "{} panels", all.len());
    let mut empty = Vec::new();
    for p in &all {
        assert!(!p.targets.is_empty(), "panel {:?} has no query", p.title);
        let mut series = 0;
        for (expr, _) in &p.targets {
            let r = query(&prom, &substitute(expr)).await;
            assert_eq!(r["status"], "success", "panel {:?}: {expr}: {r}", p.title);
            series += r["data"]["result"].as_array().map_or(0, Vec::len);
        }
        if series == 0 {
            empty.push(p.title.clone());
        }
    }
    assert!(empty.is_empty(), "panels without data: {empty:?}");

    if Command::new("chromium").arg("--version").output().is_ok() {
        draw_dashboard(&prom, &all, started, Instant::now()).await;
    }
    drop(prom);
    drop((ana, bruno));
    server.shutdown().await;
}

// ---------------------------------------------------------------- picture

const COLORS: [&str; 8] = [
    "#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9", "#8ab8ff", "#fade2a",
];

fn legend(format: &str, metric: &Value) -> String {
    let mut out = format.to_string();
    if let Some(labels) = metric.as_object() {
        for (k, v) in labels {
            out = out.replace(&format!("{{{{{k}}}}}"), v.as_str().unwrap_or(""));
            out = out.replace(&format!("{{{{ {k} }}}}"), v.as_str().unwrap_or(""));
        }
    }
    if out.is_empty() {
        out = metric["__name__"].as_str().unwrap_or("value").to_string();
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "percentunit" => format!("{:.0}%", v * 100.0),
        "s" if v < 1.0 => format!("{:.1} ms", v * 1000.0),
        "s" => format!("{v:.1} s"),
        _ if v.abs() >= 100.0 || v == v.trunc() => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}

/// One panel as an SVG line chart of its queries over the run.
async fn panel_svg(prom: &Prometheus, p: &Panel, start: u64, end: u64) -> String {
    let (w, h) = (460.0, 180.0);
    let mut lines = Vec::new();
    for (expr, fmt) in &p.targets {
        let path = format!(
            "/api/v1/query_range?query={}&start={start}&end={end}&step=2",
            encode(&substitute(expr))
        );
        let r = api(prom, &path).await;
        for s in r["data"]["result"].as_array().into_iter().flatten() {
            let pts: Vec<(f64, f64)> = s["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| {
                    let t = v[0].as_f64()?;
                    let y: f64 = v[1].as_str()?.parse().ok()?;
                    y.is_finite().then_some((t, y))
                })
                .collect();
            if !pts.is_empty() {
                lines.push((legend(fmt, &s["metric"]), pts));
            }
        }
    }
    let max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(0.0_f64, f64::max)
        .max(if p.unit == "percentunit" { 1.0 } else { 1e-9 });
    let (x0, x1) = (start as f64, end.max(start + 1) as f64);
    let mut svg = format!(
        "<svg viewBox='0 0 {w} {h}' width='{w}' height='{h}'><line x1='40' y1='{b}' x2='{w}' y2='{b}' stroke='#444'/>\
         <text x='4' y='14' class='ax'>{}</text><text x='4' y='{b}' class='ax'>0</text>",
        fmt_value(max, &p.unit),
        b = h - 20.0
    );
    let mut keys = String::new();
    for (i, (name, pts)) in lines.iter().take(8).enumerate() {
        let c = COLORS[i % COLORS.len()];
        let d: Vec<String> = pts
            .iter()
            .map(|(t, y)| {
                let x = 40.0 + (t - x0) / (x1 - x0) * (w - 44.0);
                let yy = (h - 20.0) - y / max * (h - 30.0);
                format!("{x:.1},{yy:.1}")
            })
            .collect();
        svg.push_str(&format!(
            "<polyline fill='none' stroke='{c}' stroke-width='1.6' points='{}'/>",
            d.join(" ")
        ));
        keys.push_str(&format!(
            "<span><i style='background:{c}'></i>{}</span>",
            escape(name)
        ));
    }
    svg.push_str("</svg>");
    format!(
        "<div class='p'><h3>{}</h3>{svg}<div class='k'>{keys}</div></div>",
        escape(&p.title)
    )
}

async fn draw_dashboard(prom: &Prometheus, all: &[Panel], started: Instant, ended: Instant) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let span = ended.duration_since(started).as_secs().max(60);
    let (start, end) = (now.saturating_sub(span), now);
    let mut body = String::new();
    for p in all {
        body.push_str(&panel_svg(prom, p, start, end).await);
    }
    let html = format!(
        "<!doctype html><meta charset='utf-8'><style>\
         body{{background:#111217;color:#ccccdc;font:13px system-ui,sans-serif;margin:12px}}\
         h1{{font-size:18px;margin:4px 0 12px}}\
         .g{{display:grid;grid-template-columns:repeat(4,476px);gap:8px}}\
         .p{{background:#181b1f;border:1px solid #2c3235;border-radius:3px;padding:6px}}\
         h3{{font-size:13px;margin:0 0 4px;font-weight:500}}\
         .ax{{fill:#8e8e8e;font-size:10px}}\
         .k{{font-size:11px;line-height:15px;height:32px;overflow:hidden}}\
         .k span{{margin-right:10px;white-space:nowrap}}\
         .k i{{display:inline-block;width:10px;height:3px;margin:0 4px 3px 0}}</style>\
         <h1>centralita — call center · last {span} s (Prometheus query_range of the dashboard's expressions)</h1>\
         <div class='g'>{body}</div>"
    );
    let dir = Path::new(ROOT).join("target/dashboard");
    std::fs::create_dir_all(&dir).expect("target/dashboard");
    let page = dir.join("centralita.html");
    std::fs::write(&page, html).expect("page written");
    let rows = all.len().div_ceil(4);
    let height = 60 + rows * 262;
    let png = dir.join("centralita.png");
    let status = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            &format!("--screenshot={}", png.display()),
            &format!("--window-size=1940,{height}"),
            &format!("file://{}", page.display()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("chromium runs");
    assert!(status.success() && png.exists(), "dashboard picture drawn");
    eprintln!("dashboard picture: {}", png.display());
}
