//! The drain-helper binary
