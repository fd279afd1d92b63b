//! End-to-end tests of the real `hookline` binary, on SQLite and (when
//! `HOOKLINE_TEST_POSTGRES_URL` is set) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod contract;
mod crash;
mod email_page;
mod errors;
mod handshake;
mod hardening;
mod helpers;
mod history;
mod hostile;
mod ingest;
mod lease;
mod load;
mod mail;
mod memory;
mod notify;
mod ops;
mod overview;
mod pages;
mod quiet_hours;
mod rules_cli;
mod rules_conflict;
mod rules_writing;
mod security;
mod smtp;
mod timers;
mod webdriver;
