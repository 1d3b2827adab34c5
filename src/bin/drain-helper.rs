//! drain-helper: see docs/helper.md. All logic lives in `drain_webhook::helper`.

fn main() {
    std::process::exit(drain_webhook::helper::main_with_args(std::env::args_os()));
}
