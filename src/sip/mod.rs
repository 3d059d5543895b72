//! SIP: the socket front (ours), rsipstack for transactions and dialogs, and
//! the adapter that turns them into the project's own call events. Only this
//! module names rsipstack types.

pub mod accounts;
pub mod digest;
pub mod front;
pub mod guard;
pub mod limits;
pub mod raw;
pub mod registrar;
pub mod stack;

pub use stack::{
    AgentLeg, AgentLegEvent, AgentTarget, CallHandler, CallLeg, IncomingCall, InfoReply,
    InviteError, LegEnd, LegEvent, OfferReply, ReferReply, SipStack, StackOptions,
};
