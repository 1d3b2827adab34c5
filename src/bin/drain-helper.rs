//! drain-helper: see docs/helper.md. All logic lives in `drain_webhook::helper`.
//!
//! `no_main`: a C `main` instead of Rust's `lang_start` keeps the runtime setup that the
//! helper does not need (main-thread stack guard, which drags `pthread_getattr_np` and glibc's
//! scanf family into a static binary) out of the build, about 140 KiB of the 1 MiB budget.
//! The one part of that setup the helper relies on, ignoring SIGPIPE, is done by
//! `main_with_args`. Arguments still come from `std::env::args_os` (glibc hands them to std
//! through `.init_array`). Test builds keep the harness's main.
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    drain_webhook::helper::main_with_args(std::env::args_os())
}
