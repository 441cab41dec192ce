//! Two sessions wired together through a simulated link: each direction has a fixed
//! delay and can be cut; time only moves when the next deadline or delivery says so.
#![allow(dead_code)] // not every test file uses every helper

use std::time::{Duration, Instant};

use bfd::{Action, ControlPacket, Session, SessionConfig, State, Transition};

/// What happened to one side.
#[derive(Debug, Default)]
pub struct Log {
    /// Every state change, with when it happened.
    pub transitions: Vec<(Instant, Transition)>,
    /// Every packet sent, with when.
    pub sent: Vec<(Instant, ControlPacket)>,
    /// When a packet from the peer was last delivered.
    pub last_heard: Option<Instant>,
    /// Packets delivered.
    pub heard: usize,
}

/// Two sessions, `sides[0]` and `sides[1]`, and the packets in flight between them.
#[derive(Debug)]
pub struct Pair {
    pub now: Instant,
    pub sides: [Session; 2],
    pub logs: [Log; 2],
    /// Delay of packets sent by side i.
    pub delay: [Duration; 2],
    /// Packets sent by side i are lost while this is set.
    pub cut: [bool; 2],
    in_flight: Vec<(Instant, usize, ControlPacket)>,
}

impl Pair {
    pub fn new(configs: [SessionConfig; 2], delay: [Duration; 2], seeds: [u64; 2]) -> Pair {
        let now = Instant::now();
        Pair {
            now,
            sides: [
                Session::new(now, configs[0], 0x0a0a_0001, seeds[0]).unwrap(),
                Session::new(now, configs[1], 0x0b0b_0002, seeds[1]).unwrap(),
            ],
            logs: [Log::default(), Log::default()],
            delay,
            cut: [false, false],
            in_flight: Vec::new(),
        }
    }

    /// Carries out what side `from` asked for.
    pub fn apply(&mut self, from: usize, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(packet) => {
                    // Every packet a session sends passes the reception checks.
                    let bytes = packet.encode();
                    assert_eq!(ControlPacket::decode(&bytes), Ok(packet));
                    self.logs[from].sent.push((self.now, packet));
                    if !self.cut[from] {
                        let at = self.now + self.delay[from];
                        self.in_flight.push((at, 1 - from, packet));
                    }
                }
                Action::StateChanged(transition) => {
                    let side = &self.sides[from];
                    assert_eq!(transition.to, side.state());
                    if matches!(transition.to, State::Init | State::Up) {
                        // Never Init or Up without hearing the peer, within its
                        // detection time.
                        let heard = self.logs[from].last_heard.expect("heard the peer");
                        assert_eq!(heard, self.now, "{transition:?} not on a packet");
                    }
                    self.logs[from].transitions.push((self.now, transition));
                }
            }
        }
    }

    /// The next moment something is due, if any.
    pub fn next_event(&self) -> Option<Instant> {
        let timers = self.sides.iter().filter_map(Session::poll_timeout);
        let deliveries = self.in_flight.iter().map(|(at, _, _)| *at);
        timers.chain(deliveries).min()
    }

    /// Runs every event up to and including `until`.
    pub fn run_until(&mut self, until: Instant) {
        while let Some(at) = self.next_event().filter(|at| *at <= until) {
            self.now = at;
            let mut index = 0;
            while index < self.in_flight.len() {
                if self.in_flight[index].0 <= at {
                    let (_, to, packet) = self.in_flight.remove(index);
                    self.logs[to].last_heard = Some(at);
                    self.logs[to].heard += 1;
                    let actions = self.sides[to].on_packet(at, &packet).unwrap();
                    self.apply(to, actions);
                } else {
                    index += 1;
                }
            }
            for side in 0..2 {
                if self.sides[side].poll_timeout().is_some_and(|t| t <= at) {
                    let actions = self.sides[side].on_timer(at);
                    self.apply(side, actions);
                }
            }
        }
        self.now = until;
    }

    /// Runs for `duration`.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// Runs until both sides are Up, at most `limit`; true when they are.
    pub fn run_until_up(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if self.sides.iter().all(|s| s.state() == State::Up) {
                return true;
            }
            let Some(next) = self.next_event() else {
                return false;
            };
            self.run_until(next.min(end));
        }
        self.sides.iter().all(|s| s.state() == State::Up)
    }

    pub fn states(&self) -> [State; 2] {
        [self.sides[0].state(), self.sides[1].state()]
    }
}

pub fn config(tx_ms: u64, rx_ms: u64, detect_mult: u8) -> SessionConfig {
    SessionConfig {
        desired_min_tx: Duration::from_millis(tx_ms),
        required_min_rx: Duration::from_millis(rx_ms),
        detect_mult,
    }
}
