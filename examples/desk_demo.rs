//! A call for the desk to show: registers an agent's test softphone, makes
//! the agent ready (`*11`), and places one caller's call to a queue's
//! number; the phone rings for a while before it answers, the call talks,
//! then the caller hangs up. Open the desk as that agent meanwhile and the
//! screen pop, the call and the wrap-up go by.
//!
//!   cargo run --release &                                       # the controller
//!   cargo run --example desk_demo -- 127.0.0.1:5060 ana ana-demo-1234 201 8 30
//!
//! Arguments: SIP address, agent, password, number dialed, seconds ringing,
//! seconds talking. Loopback only; it stops by itself.

#[path = "../tests/common/mod.rs"]
mod common;

use common::phone::{AgentPhone, Answer};
use common::{Call, SipClient};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(server) = args
        .get(1)
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
    else {
        eprintln!("usage: desk_demo SIP_ADDR [AGENT] [PASSWORD] [NUMBER] [RING_SECS] [TALK_SECS]");
        std::process::exit(2)
    };
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let agent = arg(2, "ana");
    let password = arg(3, "ana-demo-1234");
    let number = arg(4, "201");
    let ring: u64 = arg(5, "8").parse().unwrap_or(8).min(60);
    let talk: u64 = arg(6, "30").parse().unwrap_or(30).min(600);
    let phone = AgentPhone::register(server, &agent, &password).await;
    phone.set_answer(Answer::After(ring * 1000));
    let desk = Arc::new(SipClient::new(server).await);
    let (ready, _) = Call::place_as_agent(desk, "*11", &agent, &password).await;
    let _ = ready.expect_bye(Duration::from_secs(10)).await;
    println!("{agent} is ready; calling {number} (rings {ring} s, talks {talk} s)");
    let client = Arc::new(SipClient::new(server).await);
    let (mut call, resp) = Call::place(client, &number, "0 101").await;
    println!("the caller got {:?}", resp.status());
    tokio::time::sleep(Duration::from_secs(ring + talk)).await;
    println!("the caller hangs up: {:?}", call.bye().await);
    drop(phone);
}
