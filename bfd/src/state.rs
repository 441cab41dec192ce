//! The session states and diagnostic codes of RFC 5880 section 4.1, shared by the
//! packet and the state machine.

use std::fmt;

/// A session state (RFC 5880 section 4.1, Sta).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// AdminDown (0): held down by an operator.
    AdminDown,
    /// Down (1): the session is down or just created.
    Down,
    /// Init (2): the peer is heard, but it has not yet heard us.
    Init,
    /// Up (3): both sides hear each other.
    Up,
}

impl State {
    /// Every state, by code.
    pub const ALL: [State; 4] = [State::AdminDown, State::Down, State::Init, State::Up];

    /// The state of a two-bit code (the higher bits are ignored).
    pub fn from_code(code: u8) -> State {
        match code & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    /// The two-bit code on the wire.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The RFC's name: `AdminDown`, `Down`, `Init`, `Up`.
    pub fn name(self) -> &'static str {
        match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A diagnostic code (RFC 5880 section 4.1, Diag): why the sender's session last
/// changed state. Five bits; codes 9 to 31 are unassigned and kept as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Diagnostic(u8);

impl Diagnostic {
    /// 0: No Diagnostic.
    pub const NONE: Diagnostic = Diagnostic(0);
    /// 1: Control Detection Time Expired.
    pub const CONTROL_DETECTION_TIME_EXPIRED: Diagnostic = Diagnostic(1);
    /// 2: Echo Function Failed.
    pub const ECHO_FUNCTION_FAILED: Diagnostic = Diagnostic(2);
    /// 3: Neighbor Signaled Session Down.
    pub const NEIGHBOR_SIGNALED_SESSION_DOWN: Diagnostic = Diagnostic(3);
    /// 4: Forwarding Plane Reset.
    pub const FORWARDING_PLANE_RESET: Diagnostic = Diagnostic(4);
    /// 5: Path Down.
    pub const PATH_DOWN: Diagnostic = Diagnostic(5);
    /// 6: Concatenated Path Down.
    pub const CONCATENATED_PATH_DOWN: Diagnostic = Diagnostic(6);
    /// 7: Administratively Down.
    pub const ADMINISTRATIVELY_DOWN: Diagnostic = Diagnostic(7);
    /// 8: Reverse Concatenated Path Down.
    pub const REVERSE_CONCATENATED_PATH_DOWN: Diagnostic = Diagnostic(8);

    /// The diagnostic of a five-bit code (the higher bits are ignored).
    pub fn from_code(code: u8) -> Diagnostic {
        Diagnostic(code & 0x1f)
    }

    /// The five-bit code on the wire.
    pub fn code(self) -> u8 {
        self.0
    }

    /// The RFC's name (`Control Detection Time Expired` ...), or `Unassigned` for
    /// codes 9 to 31.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "No Diagnostic",
            1 => "Control Detection Time Expired",
            2 => "Echo Function Failed",
            3 => "Neighbor Signaled Session Down",
            4 => "Forwarding Plane Reset",
            5 => "Path Down",
            6 => "Concatenated Path Down",
            7 => "Administratively Down",
            8 => "Reverse Concatenated Path Down",
            _ => "Unassigned",
        }
    }
}

impl fmt::Display for Diagnostic {
    /// `1 (Control Detection Time Expired)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.name())
    }
}
