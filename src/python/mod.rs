//! RustPython: interpreter setup (frozen stdlib and pylib/) and app loading.

pub mod app;
pub mod boot_stack;
pub mod hooks;
pub mod interpreter;
pub mod interrupt;
pub mod native;
pub mod ssl_provider;
