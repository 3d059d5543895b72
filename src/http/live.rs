//! What is happening now, for the HTTP API: one record per call in
//! progress (the page an agent's phone links to in `Call-Info`). Each
//! call's driver publishes the record its core derives; the HTTP handlers
//! only read it.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// What a desk asks of a call in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskCommand {
    /// Move the caller to this queue or agent (an escalation's re-queue).
    Transfer(crate::acd::TransferTarget),
}

/// A call in progress, as an agent or a supervisor sees it. The caller's
/// address is personal data: it is shown to the agent who takes the call.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LiveCall {
    pub id: u64,
    pub ticket: String,
    pub dialed: String,
    pub caller: String,
    pub language: String,
    pub state: crate::call::CallState,
    pub queue: Option<String>,
    pub priority: Option<u8>,
    pub agent: Option<String>,
    /// Fields collected in the IVR (e.g. the ticket number typed).
    pub fields: BTreeMap<String, String>,
}

/// Calls in progress, by id: their records, and the door a desk asks each
/// call through.
#[derive(Default)]
pub struct LiveCalls {
    calls: Mutex<BTreeMap<u64, LiveCall>>,
    doors: Mutex<BTreeMap<u64, mpsc::UnboundedSender<DeskCommand>>>,
}

impl LiveCalls {
    /// Open call `id`'s door (its driver reads what comes in).
    pub fn open_door(&self, id: u64) -> mpsc::UnboundedReceiver<DeskCommand> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut d) = self.doors.lock() {
            d.insert(id, tx);
        }
        rx
    }

    pub fn close_door(&self, id: u64) {
        if let Ok(mut d) = self.doors.lock() {
            d.remove(&id);
        }
    }

    /// Ask call `id`; whether it is there to hear.
    pub fn ask(&self, id: u64, cmd: DeskCommand) -> bool {
        let tx = self.doors.lock().ok().and_then(|d| d.get(&id).cloned());
        tx.is_some_and(|tx| tx.send(cmd).is_ok())
    }

    pub fn upsert(&self, call: LiveCall) {
        if let Ok(mut m) = self.calls.lock() {
            m.insert(call.id, call);
        }
    }

    /// Change a call's record in place.
    pub fn update(&self, id: u64, f: impl FnOnce(&mut LiveCall)) {
        if let Ok(mut m) = self.calls.lock() {
            if let Some(c) = m.get_mut(&id) {
                f(c);
            }
        }
    }

    pub fn remove(&self, id: u64) {
        if let Ok(mut m) = self.calls.lock() {
            m.remove(&id);
        }
    }

    pub fn get(&self, id: u64) -> Option<LiveCall> {
        self.calls.lock().ok().and_then(|m| m.get(&id).cloned())
    }

    pub fn all(&self) -> Vec<LiveCall> {
        self.calls
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}
