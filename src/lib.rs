//! waguard: a policy gateway for AWS Well-Architected sharing.
//!
//! A request flows one way: [`server`] -> [`gateway`] -> [`auth`] -> [`operation`] ->
//! [`validate`] -> [`policy`] -> [`audit`] (decision) -> [`upstream`] -> [`audit`] (outcome)
//! -> response. [`app`] assembles the parts from a [`config`]; [`sim`] is a stand-in for AWS.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod drift;
pub mod error;
pub mod gateway;
pub mod identity;
pub mod limits;
pub mod metrics;
pub mod operation;
pub mod organization;
pub mod policy;
pub mod reload;
pub mod scp;
pub mod server;
pub mod settle;
pub mod sim;
pub mod upstream;
pub mod validate;
