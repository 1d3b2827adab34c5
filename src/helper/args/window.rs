//! When the helper's signal phase begins: never before the floor (`--delay`, D), after what it
//! waits for (nothing, the adaptive hold or the front proxy's listeners), then the stagger
//! (S). One type for both sides of the contract: the helper's parser reads it and its phases
//! run it; the webhook's planner builds it and times the grace period with it.

use super::hold::{FollowArgs, HoldArgs};

/// The range of times, in seconds from the start of the hook, at which the signal phase
/// begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalWindow {
    /// `--delay` (D): the signal phase never begins before it (plus the stagger).
    pub floor: u32,
    /// What ends the wait once the floor is reached.
    pub wait: Wait,
    /// `--stagger` (S), seconds slept after the wait ends; 0 when not given.
    pub stagger: u32,
}

/// What the helper waits for before the stagger. The parser refuses `--quiet` with
/// `--follow`: a container either holds while traffic arrives or follows the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// Nothing beyond the floor.
    Delay,
    /// `--quiet Q --hold-max M [--probe-every P,...] [--migrate SIG|URL]`: hold while new
    /// connections still arrive in the pod (docs/helper.md, "The adaptive hold").
    Hold(HoldArgs),
    /// `--follow PORTS --follow-until T`: hold until no socket listens on PORTS any more (the
    /// front proxy has begun its graceful stop).
    Follow(FollowArgs),
}

impl SignalWindow {
    /// A signal phase that begins at `seconds`, whatever the traffic.
    pub fn fixed(seconds: u32) -> Self {
        SignalWindow {
            floor: seconds,
            wait: Wait::Delay,
            stagger: 0,
        }
    }

    /// The earliest time the signal phase begins: the floor plus the stagger.
    pub fn earliest(&self) -> u32 {
        self.floor.saturating_add(self.stagger)
    }

    /// The latest time the signal phase begins: the floor, the hold's cap or the follow's
    /// bound, plus the stagger. What `--max` and the grace period must cover.
    pub fn latest(&self) -> u32 {
        let waited = match &self.wait {
            Wait::Delay => self.floor,
            Wait::Hold(hold) => hold.cap,
            Wait::Follow(follow) => follow.until,
        };
        waited.saturating_add(self.stagger)
    }

    /// The adaptive hold's options, when the wait is the hold.
    pub fn hold(&self) -> Option<&HoldArgs> {
        match &self.wait {
            Wait::Hold(hold) => Some(hold),
            _ => None,
        }
    }
}
