//! One worker: the mio event loop that owns all socket I/O, and the
//! interpreter threads that run the app.

pub mod accept_wakeup;
pub mod activity;
pub mod admission;
pub mod connection;
pub mod deadline;
pub mod event_loop;
pub mod handoff;
pub mod output;
pub mod pool;
pub mod queue_room;
pub mod reload;
pub mod run;
pub mod shedding;
pub mod tally;
