//! The HTTP/1.1 core: bytes in, a request view out; a response encoder writing into the
//! caller's buffer. No I/O, no allocation while parsing, nothing about sockets or files.
#![forbid(unsafe_code)]

pub mod chunked;
pub mod date;
pub mod fields;
pub mod parse;
#[cfg(test)]
mod parse_fields_tests;
#[cfg(test)]
mod parse_limits_tests;
#[cfg(test)]
mod parse_tests;
pub mod proxy;
pub mod response;
mod syntax;
#[cfg(test)]
mod test_util;

pub use parse::{BodyFraming, Limits, Method, ParseError, Request, Status, Version, parse};
