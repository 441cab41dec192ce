#![allow(clippy::unwrap_used)]
//! The session state machine's battery: scripts of events with the exact actions each
//! one must produce (as `Action`'s one-line `Display`), and the states reached.
//!
//! Script language (the scripts are in `SCRIPTS` below, the runner after them):
//! - `## name` starts a script; `config KEY=VALUE ...` changes the default
//!   configuration (local AS 65001, id 10.0.0.1, peer AS 65002; keys: local-as,
//!   local-id, peer-as=N|N,M|any, hold, keepalive, connect-retry, send-hold,
//!   delay-open, backoff=INITIAL,MAX,RESET, require=CODE, families=ipv4,ipv6, gr,
//!   passive, family-errors=disable).
//! - `a > EVENT` feeds state machine `a` (the primary, made from the configuration);
//!   the indented lines that follow are the actions expected, all of them, in order
//!   (none: no action); `a >> EVENT` feeds it without checking the actions.
//! - `a = STATE` checks the state; `a ? QUERY VALUE` checks `wants local|remote`,
//!   `finished`, `counter`, `restart-delay`, `last-error`, `timers`.
//! - `b = secondary a` makes a secondary of `a`; `decide a b -> none|primary|secondary`
//!   checks the collision decision; `promote b a` promotes `b` after `a` lost.
//! - Events: manual-start, manual-start-passive, automatic-start, manual-stop
//!   ["TEXT"|CODE/SUB], automatic-stop CODE/SUB [after DURATION], tcp-connected
//!   local|remote, tcp-failed, recv open [as= my-as= no-as4 id= hold= version=
//!   families= gr no-rr], recv keepalive, recv update, recv notification CODE/SUB
//!   ["TEXT"], recv route-refresh FAMILY [subtype N], recv hex HEX (decoded with the
//!   state machine's codec context), framing-error marker|length N|io, expire TIMER,
//!   output-progressed, collision-dump, and `establish [OPEN PARAMETERS]`, which runs
//!   the active open (checked by the first script) without checking its actions.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use bgp_proto::capability::GracefulRestartFamily;
use bgp_proto::fsm::{
    Action, Event, FamilyErrorPolicy, Fsm, Initiator, Loser, PeerAs, SessionConfig, State, Timer,
    collision,
};
use bgp_proto::{
    Capability, Decoded, Family, FramingError, GracefulRestart, Message, Notification, Open,
    RouteRefresh, decode_message,
};

const SCRIPTS: &str = r#"
## active open: the normal sequence
a = Idle
a ? wants remote no
a > manual-start
    connect
    arm connect-retry 5s
    state Idle -> Connect
a ? wants local yes
a ? wants remote no
a > tcp-connected local
    send OPEN
    stop connect-retry
    arm hold 240s
    state Connect -> OpenSent
a ? wants remote no
a > recv open
    send KEEPALIVE
    arm hold 90s
    arm keepalive 30s
    state OpenSent -> OpenConfirm
a > recv keepalive
    arm hold 90s
    arm send-hold 480s
    arm backoff-reset 60s
    state OpenConfirm -> Established
    established AS 65002 id 10.0.0.2 hold 90s keepalive 30s
a = Established
a ? timers hold 90s, keepalive 30s, send-hold 480s, backoff-reset 60s
a ? counter 0

## passive open (manual start passive): waits for the peer, never connects
a > manual-start-passive
    state Idle -> Active
a ? wants remote yes
a ? timers none
a > tcp-connected remote
    send OPEN
    arm hold 240s
    state Active -> OpenSent
a > recv open
    send KEEPALIVE
    arm hold 90s
    arm keepalive 30s
    state OpenSent -> OpenConfirm
a > recv keepalive
    arm hold 90s
    arm send-hold 480s
    arm backoff-reset 60s
    state OpenConfirm -> Established
    established AS 65002 id 10.0.0.2 hold 90s keepalive 30s
a > tcp-failed
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (connection closed)
    session down (connection closed)
a > expire idle-hold
    state Idle -> Active
a = Active

## passive configuration: manual start is passive too
config passive
a > manual-start
    state Idle -> Active
a > expire connect-retry
a = Active

## connection attempts: failure, retry, attempt timeout
a > manual-start
    connect
    arm connect-retry 5s
    state Idle -> Connect
a > tcp-failed
    close
    arm connect-retry 5s
    state Connect -> Active (connection attempt failed)
a ? wants remote yes
a ? last-error connection attempt failed
a > expire connect-retry
    connect
    arm connect-retry 5s
    state Active -> Connect
a > expire connect-retry
    close
    connect
    arm connect-retry 5s
a > tcp-connected remote
a = Connect
a > tcp-connected local
    send OPEN
    stop connect-retry
    arm hold 240s
    state Connect -> OpenSent

## a peer connecting while we wait between attempts
config connect-retry=10s
a > manual-start
    connect
    arm connect-retry 10s
    state Idle -> Connect
a > tcp-failed
    close
    arm connect-retry 10s
    state Connect -> Active (connection attempt failed)
a > tcp-connected remote
    send OPEN
    stop connect-retry
    arm hold 240s
    state Active -> OpenSent

## OPEN error: version 3 (an OPEN built by hand) is refused with 2/1 and version 4
a > manual-start
    connect
    arm connect-retry 5s
    state Idle -> Connect
a > tcp-connected local
    send OPEN
    stop connect-retry
    arm hold 240s
    state Connect -> OpenSent
a > recv open version=3
    send NOTIFICATION 2/1 data 0004
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/1 data 0004: version 3 is not supported (4 is))
a ? counter 1
a ? finished no

## OPEN error: version 3 on the wire (the codec refuses it)
a >> manual-start
a >> tcp-connected local
a > recv hex ffffffffffffffffffffffffffffffff 002b 01 03 fdea005a 0a000002 0e 020c01040001000141040000fdea
    send NOTIFICATION 2/1 data 0004
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/1 data 0004: malformed OPEN: version 3 is not 4)

## OPEN error: peer AS other than configured
a >> manual-start
a >> tcp-connected local
a > recv open as=65003
    send NOTIFICATION 2/2
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/2: peer AS 65003, expected 65002)

## OPEN error: AS_TRANS without the 4-octet AS capability
config peer-as=any
a >> manual-start
a >> tcp-connected local
a > recv open no-as4 as=23456
    send NOTIFICATION 2/2
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/2: AS_TRANS without the 4-octet AS capability)

## OPEN error: My Autonomous System disagrees with the 4-octet AS capability
a >> manual-start
a >> tcp-connected local
a > recv open as=65002 my-as=65003
    send NOTIFICATION 2/2
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/2: My Autonomous System 65003 disagrees with the 4-octet AS 65002)

## OPEN error: AS 0 (RFC 7607)
config peer-as=any
a >> manual-start
a >> tcp-connected local
a > recv open as=0
    send NOTIFICATION 2/2
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/2: AS 0 is reserved)

## OPEN error: AS outside a list
config peer-as=65002,65003
a >> manual-start
a >> tcp-connected local
a > recv open as=65004
    send NOTIFICATION 2/2
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/2: peer AS 65004, expected 65002 or 65003)

## peer AS from a list, 4-octet AS behind AS_TRANS
config peer-as=65002,4200000001
establish as=4200000001
a = Established
a ? context AS 4200000001 ebgp

## dynamic neighbor (any AS): eBGP or iBGP as the peer says
config peer-as=any
a >> manual-start
a > tcp-connected remote
a = Connect
a > tcp-connected local
    send OPEN
    stop connect-retry
    arm hold 240s
    state Connect -> OpenSent
a > recv open as=65001 id=10.0.0.7
    send KEEPALIVE
    arm hold 90s
    arm keepalive 30s
    state OpenSent -> OpenConfirm
a ? context AS 65001 ibgp

## OPEN error: BGP identifier 0.0.0.0
a >> manual-start
a >> tcp-connected local
a > recv open id=0.0.0.0
    send NOTIFICATION 2/3
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/3: BGP identifier 0.0.0.0)

## OPEN error: an internal peer with our BGP identifier
config peer-as=65001
a >> manual-start
a >> tcp-connected local
a > recv open as=65001 id=10.0.0.1
    send NOTIFICATION 2/3
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/3: internal peer has our BGP identifier 10.0.0.1)

## an external peer may share our BGP identifier (RFC 6286)
establish id=10.0.0.1
a = Established

## OPEN error: hold time 1 (built by hand)
a >> manual-start
a >> tcp-connected local
a > recv open hold=1
    send NOTIFICATION 2/6
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/6: hold time 1 s is not allowed)

## OPEN error: hold time 2 on the wire
a >> manual-start
a >> tcp-connected local
a > recv hex ffffffffffffffffffffffffffffffff 002b 01 04 fdea0002 0a000002 0e 020c01040001000141040000fdea
    send NOTIFICATION 2/6
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/6: malformed OPEN: hold time 2 is refused)

## OPEN error: unsupported optional parameter (authentication, type 1)
a >> manual-start
a >> tcp-connected local
a > recv hex ffffffffffffffffffffffffffffffff 0020 01 04 fdea005a 0a000002 03 010100
    send NOTIFICATION 2/4
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/4: malformed OPEN: optional parameter type 1 is not supported)

## OPEN error: a malformed capability (4-octet AS of 2 octets)
a >> manual-start
a >> tcp-connected local
a > recv hex ffffffffffffffffffffffffffffffff 0023 01 04 fdea005a 0a000002 06 02044102fdea
    send NOTIFICATION 2/0
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/0: malformed OPEN: capability 65 has a malformed value of 2 octets)

## OPEN error: a required capability is missing (2/7 lists ours)
config require=65
a >> manual-start
a >> tcp-connected local
a > recv open no-as4
    send NOTIFICATION 2/7 data 41040000fde9
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/7 data 41040000fde9: required capability 65 missing)

## OPEN error: a required capability we do not advertise either
config require=64
a >> manual-start
a >> tcp-connected local
a > recv open
    send NOTIFICATION 2/7 data 4000
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/7 data 4000: required capability 64 missing)

## OPEN error: no common address family
config families=ipv6
a >> manual-start
a >> tcp-connected local
a > recv open families=ipv4
    send NOTIFICATION 2/7 data 010400020001
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 2/7 data 010400020001: no common address family (peer has ipv4-unicast))

## an OPEN without 4-octet AS from a 2-octet peer is fine
establish no-as4
a ? context AS 65002 ebgp as2

## hold time 0: no hold timer, no keepalives, no send hold timer
config hold=0
a >> manual-start
a > tcp-connected local
    send OPEN
    stop connect-retry
    arm hold 240s
    state Connect -> OpenSent
a > recv open
    send KEEPALIVE
    stop hold
    state OpenSent -> OpenConfirm
a > recv keepalive
    arm backoff-reset 60s
    state OpenConfirm -> Established
    established AS 65002 id 10.0.0.2 hold 0s keepalive 0s
a > recv keepalive
a > output-progressed
a ? timers backoff-reset 60s

## the peer's hold time 0 wins over ours
a >> manual-start
a >> tcp-connected local
a > recv open hold=0
    send KEEPALIVE
    stop hold
    state OpenSent -> OpenConfirm

## a smaller hold time from the peer scales the keepalive down
a >> manual-start
a >> tcp-connected local
a > recv open hold=9
    send KEEPALIVE
    arm hold 9s
    arm keepalive 3s
    state OpenSent -> OpenConfirm
a > recv keepalive
    arm hold 9s
    arm send-hold 480s
    arm backoff-reset 60s
    state OpenConfirm -> Established
    established AS 65002 id 10.0.0.2 hold 9s keepalive 3s

## configured keepalive
config keepalive=10
a >> manual-start
a >> tcp-connected local
a > recv open
    send KEEPALIVE
    arm hold 90s
    arm keepalive 10s
    state OpenSent -> OpenConfirm

## keepalive timing in OpenConfirm and Established
a >> manual-start
a >> tcp-connected local
a >> recv open
a > expire keepalive
    send KEEPALIVE
    arm keepalive 30s
a > recv keepalive
    arm hold 90s
    arm send-hold 480s
    arm backoff-reset 60s
    state OpenConfirm -> Established
    established AS 65002 id 10.0.0.2 hold 90s keepalive 30s
a > expire keepalive
    send KEEPALIVE
    arm keepalive 30s
a > recv keepalive
    arm hold 90s
a > expire keepalive
    send KEEPALIVE
    arm keepalive 30s

## hold timer expires while waiting for the OPEN
a >> manual-start
a >> tcp-connected local
a > expire hold
    send NOTIFICATION 4/0
    close
    arm idle-hold 1s
    state OpenSent -> Idle (hold timer expired)

## hold timer expires in OpenConfirm
a >> manual-start
a >> tcp-connected local
a >> recv open
a > expire hold
    send NOTIFICATION 4/0
    close
    stop keepalive
    arm idle-hold 1s
    state OpenConfirm -> Idle (hold timer expired)

## hold timer expires in Established
establish
a > expire hold
    send NOTIFICATION 4/0
    close
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (hold timer expired)
    session down (hold timer expired)
a ? last-error hold timer expired

## a stale timer expiry is ignored
a > expire hold
a > expire keepalive
a > manual-start
    connect
    arm connect-retry 5s
    state Idle -> Connect
a > expire hold
a > expire idle-hold
a = Connect

## UPDATE: delivered after the hold timer restarts; RFC 7606 actions travel with it
establish
a > recv update
    arm hold 90s
    deliver UPDATE none
a > recv hex ffffffffffffffffffffffffffffffff 002f 02 0000 0014 c0010100 40020602010000fde9 400304c0000201 18c63364
    arm hold 90s
    deliver UPDATE treat-as-withdraw
a > recv hex ffffffffffffffffffffffffffffffff 0036 02 0000 001b 40010100 40020602010000fde9 400304c0000201 c0080a00000001 18c63364
    arm hold 90s
    deliver UPDATE treat-as-withdraw
a = Established

## UPDATE needing a session reset
establish
a > recv hex ffffffffffffffffffffffffffffffff 0017 02 0005 0000
    send NOTIFICATION 3/1
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (sent NOTIFICATION 3/1: malformed UPDATE: withdrawn routes length overruns the message)
    session down (sent NOTIFICATION 3/1: malformed UPDATE: withdrawn routes length overruns the message)

## UPDATE with AFI/SAFI disable: the session resets by default
establish
a > recv hex ffffffffffffffffffffffffffffffff 003b 02 0000 0024 800e14000201080000000000000000003020010db80001 40010100 40020602010000fde9
    arm hold 90s
    send NOTIFICATION 3/9 data 800e14000201080000000000000000003020010db80001
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (sent NOTIFICATION 3/9 data 800e14000201080000000000000000003020010db80001: AFI/SAFI disable of ipv6-unicast: MP_REACH_NLRI: next hop length 8 does not fit ipv6-unicast)
    session down (sent NOTIFICATION 3/9 data 800e14000201080000000000000000003020010db80001: AFI/SAFI disable of ipv6-unicast: MP_REACH_NLRI: next hop length 8 does not fit ipv6-unicast)

## UPDATE with AFI/SAFI disable delivered when the speaker disables families
config family-errors=disable
establish
a > recv hex ffffffffffffffffffffffffffffffff 003b 02 0000 0024 800e14000201080000000000000000003020010db80001 40010100 40020602010000fde9
    arm hold 90s
    deliver UPDATE afi-safi-disable
a ? disabled ipv6-unicast

## ROUTE-REFRESH: requests and BoRR/EoRR pass, ignorable subtypes and unadvertised families do not
establish
a > recv route-refresh ipv4-unicast
    arm hold 90s
    deliver ROUTE-REFRESH ipv4-unicast subtype 0
a > recv route-refresh ipv4-unicast subtype 1
    arm hold 90s
    deliver ROUTE-REFRESH ipv4-unicast subtype 1
a > recv route-refresh ipv4-unicast subtype 7
    arm hold 90s
a > recv route-refresh ipv6-unicast
    arm hold 90s
a > recv hex ffffffffffffffffffffffffffffffff 0019 05 0001 0001 0000
    send NOTIFICATION 7/1 data ffffffffffffffffffffffffffffffff001905000100010000
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (sent NOTIFICATION 7/1 data ffffffffffffffffffffffffffffffff001905000100010000: malformed ROUTE-REFRESH: ROUTE-REFRESH body of 6 octets, expected 4)
    session down (sent NOTIFICATION 7/1 data ffffffffffffffffffffffffffffffff001905000100010000: malformed ROUTE-REFRESH: ROUTE-REFRESH body of 6 octets, expected 4)

## unexpected messages: FSM error with the RFC 6608 subcode of the state
a >> manual-start
a >> tcp-connected local
a > recv keepalive
    send NOTIFICATION 5/1
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 5/1: unexpected KEEPALIVE in OpenSent)

## unexpected UPDATE in OpenSent
a >> manual-start
a >> tcp-connected local
a > recv update
    send NOTIFICATION 5/1
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 5/1: unexpected UPDATE in OpenSent)

## unexpected ROUTE-REFRESH in OpenSent
a >> manual-start
a >> tcp-connected local
a > recv route-refresh ipv4-unicast
    send NOTIFICATION 5/1
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 5/1: unexpected ROUTE-REFRESH in OpenSent)

## unexpected UPDATE in OpenConfirm
a >> manual-start
a >> tcp-connected local
a >> recv open
a > recv update
    send NOTIFICATION 5/2
    close
    stop hold
    stop keepalive
    arm idle-hold 1s
    state OpenConfirm -> Idle (sent NOTIFICATION 5/2: unexpected UPDATE in OpenConfirm)

## a second OPEN in OpenConfirm
a >> manual-start
a >> tcp-connected local
a >> recv open
a > recv open
    send NOTIFICATION 5/2
    close
    stop hold
    stop keepalive
    arm idle-hold 1s
    state OpenConfirm -> Idle (sent NOTIFICATION 5/2: unexpected OPEN in OpenConfirm)

## an OPEN in Established
establish
a > recv open
    send NOTIFICATION 5/3
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (sent NOTIFICATION 5/3: unexpected OPEN in Established)
    session down (sent NOTIFICATION 5/3: unexpected OPEN in Established)

## NOTIFICATION received in OpenSent
a >> manual-start
a >> tcp-connected local
a > recv notification 2/2
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (received NOTIFICATION 2/2)

## NOTIFICATION received in OpenConfirm, with a shutdown communication
a >> manual-start
a >> tcp-connected local
a >> recv open
a > recv notification 6/2 "going down for maintenance"
    close
    stop hold
    stop keepalive
    arm idle-hold 1s
    state OpenConfirm -> Idle (received NOTIFICATION 6/2 "going down for maintenance")

## NOTIFICATION received in Established: administrative shutdown with a communication
establish
a > recv notification 6/2 "maintenance: back at 14:00"
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (received NOTIFICATION 6/2 "maintenance: back at 14:00")
    session down (received NOTIFICATION 6/2 "maintenance: back at 14:00")
a ? communication maintenance: back at 14:00

## NOTIFICATION received in Established: administrative reset, hard reset
establish
a > recv notification 6/4 "reset"
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (received NOTIFICATION 6/4 "reset")
    session down (received NOTIFICATION 6/4 "reset")
a > expire idle-hold
    connect
    arm connect-retry 5s
    state Idle -> Connect
a >> tcp-connected local
a >> recv open
a >> recv keepalive
a > recv notification 6/9 data 0602
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 2s
    state Established -> Idle (received NOTIFICATION 6/9 data 0602)
    session down (received NOTIFICATION 6/9 data 0602)

## a shutdown communication that is not UTF-8 is never shown as text
establish
a > recv hex ffffffffffffffffffffffffffffffff 0019 03 06 02 03 ff fe fd
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (received NOTIFICATION 6/2 (shutdown communication is not valid UTF-8))
    session down (received NOTIFICATION 6/2 (shutdown communication is not valid UTF-8))

## a NOTIFICATION too short to read is not answered
establish
a > recv hex ffffffffffffffffffffffffffffffff 0014 03 06
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (invalid NOTIFICATION received: malformed NOTIFICATION: length field 20 (message of 20 octets) for message type 3)
    session down (invalid NOTIFICATION received: malformed NOTIFICATION: length field 20 (message of 20 octets) for message type 3)

## a malformed header in OpenSent
a >> manual-start
a >> tcp-connected local
a > recv hex ffffffffffffffffffffffffffffffff 0013 07
    send NOTIFICATION 1/3 data 07
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (sent NOTIFICATION 1/3 data 07: malformed message of type 7: message type 7)

## a broken stream: bad marker, bad length, transport error
establish
a > framing-error marker
    send NOTIFICATION 1/1
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (sent NOTIFICATION 1/1: message header marker is not all ones)
    session down (sent NOTIFICATION 1/1: message header marker is not all ones)
a >> expire idle-hold
a >> tcp-connected local
a > framing-error length 5000
    send NOTIFICATION 1/2 data 1388
    close
    stop hold
    arm idle-hold 2s
    state OpenSent -> Idle (sent NOTIFICATION 1/2 data 1388: message length 5000 outside 19..=4096)
a >> expire idle-hold
a >> tcp-connected local
a > framing-error io
    close
    stop hold
    arm idle-hold 4s
    state OpenSent -> Idle (connection closed)

## the connection closes in OpenSent and OpenConfirm
a >> manual-start
a >> tcp-connected local
a > tcp-failed
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (connection closed)
a >> expire idle-hold
a >> tcp-connected local
a >> recv open
a > tcp-failed
    close
    stop hold
    stop keepalive
    arm idle-hold 2s
    state OpenConfirm -> Idle (connection closed)

## manual stop with a shutdown communication in Established
establish
a > manual-stop "maintenance window"
    send NOTIFICATION 6/2 "maintenance window"
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    state Established -> Idle (stopped, sent NOTIFICATION 6/2 "maintenance window")
    session down (stopped, sent NOTIFICATION 6/2 "maintenance window")
a ? finished yes
a ? wants remote no
a > automatic-start
a > expire idle-hold
a = Idle
a > manual-start
    connect
    arm connect-retry 5s
    state Idle -> Connect

## manual stop without a message sends Cease / Administrative Shutdown
a >> manual-start
a >> tcp-connected local
a > manual-stop
    send NOTIFICATION 6/2
    close
    stop hold
    state OpenSent -> Idle (stopped, sent NOTIFICATION 6/2)

## manual stop with another NOTIFICATION (peer de-configured)
establish
a > manual-stop 6/3
    send NOTIFICATION 6/3
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    state Established -> Idle (stopped, sent NOTIFICATION 6/3)
    session down (stopped, sent NOTIFICATION 6/3)

## manual stop before the OPEN: no NOTIFICATION
a >> manual-start
a > manual-stop "bye"
    close
    stop connect-retry
    state Connect -> Idle (stopped)

## manual stop in Idle cancels the restart
a >> manual-start
a >> tcp-connected local
a >> tcp-failed
a > manual-stop
    stop idle-hold
a ? finished yes

## automatic stop (maximum prefixes) with its own restart delay
establish
a > automatic-stop 6/1 after 60s
    send NOTIFICATION 6/1
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 60s
    state Established -> Idle (stopped by the speaker, sent NOTIFICATION 6/1)
    session down (stopped by the speaker, sent NOTIFICATION 6/1)
a > automatic-start
    connect
    stop idle-hold
    arm connect-retry 5s
    state Idle -> Connect

## automatic stop without a delay uses the backoff
establish
a > automatic-stop 6/6
    send NOTIFICATION 6/6
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (stopped by the speaker, sent NOTIFICATION 6/6)
    session down (stopped by the speaker, sent NOTIFICATION 6/6)

## restart backoff: doubles up to the cap, starts over after a stable session
a >> manual-start
a >> tcp-connected local
a >> tcp-failed
a ? restart-delay 2s
a >> expire idle-hold
a >> tcp-connected local
a > tcp-failed
    close
    stop hold
    arm idle-hold 2s
    state OpenSent -> Idle (connection closed)
a >> expire idle-hold
a >> tcp-connected local
a > tcp-failed
    close
    stop hold
    arm idle-hold 4s
    state OpenSent -> Idle (connection closed)
a >> expire idle-hold
a >> tcp-connected local
a > tcp-failed
    close
    stop hold
    arm idle-hold 8s
    state OpenSent -> Idle (connection closed)
a >> expire idle-hold
a >> tcp-connected local
a > tcp-failed
    close
    stop hold
    arm idle-hold 16s
    state OpenSent -> Idle (connection closed)
a >> expire idle-hold
a >> tcp-connected local
a > tcp-failed
    close
    stop hold
    arm idle-hold 30s
    state OpenSent -> Idle (connection closed)
a >> expire idle-hold
a >> tcp-connected local
a > tcp-failed
    close
    stop hold
    arm idle-hold 30s
    state OpenSent -> Idle (connection closed)
a ? counter 7
a >> expire idle-hold
a >> tcp-connected local
a >> recv open
a >> recv keepalive
a > tcp-failed
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 30s
    state Established -> Idle (connection closed)
    session down (connection closed)
a >> expire idle-hold
a >> tcp-connected local
a >> recv open
a >> recv keepalive
a >> expire backoff-reset
a ? restart-delay 1s
a > tcp-failed
    close
    stop hold
    stop keepalive
    stop send-hold
    arm idle-hold 1s
    state Established -> Idle (connection closed)
    session down (connection closed)

## restart backoff: a manual start starts over, a configured backoff is used
config backoff=2s,5s,10m
a >> manual-start
a >> tcp-connected local
a > tcp-failed
    close
    stop hold
    arm idle-hold 2s
    state OpenSent -> Idle (connection closed)
a >> expire idle-hold
a >> tcp-connected local
a > tcp-failed
    close
    stop hold
    arm idle-hold 4s
    state OpenSent -> Idle (connection closed)
a >> expire idle-hold
a >> tcp-connected local
a > tcp-failed
    close
    stop hold
    arm idle-hold 5s
    state OpenSent -> Idle (connection closed)
a > manual-stop
    stop idle-hold
a >> manual-start
a >> tcp-connected local
a > tcp-failed
    close
    stop hold
    arm idle-hold 2s
    state OpenSent -> Idle (connection closed)

## restart of a passive session goes back to listening
config passive
a >> manual-start
a >> tcp-connected remote
a > recv notification 6/5
    close
    stop hold
    arm idle-hold 1s
    state OpenSent -> Idle (received NOTIFICATION 6/5)
a > expire idle-hold
    state Idle -> Active
a ? wants remote yes

## send hold timer: progress re-arms it, expiry aborts the connection (RFC 9687)
establish
a > output-progressed
    arm send-hold 480s
a > expire keepalive
    send KEEPALIVE
    arm keepalive 30s
a > output-progressed
    arm send-hold 480s
a > expire send-hold
    send NOTIFICATION 8/0
    close abort
    stop hold
    stop keepalive
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (send hold timer expired)
    session down (send hold timer expired)
a > output-progressed

## send hold time: twice a long hold time, or as configured
config hold=300 send-hold=700s
establish hold=300
a ? timers hold 300s, keepalive 100s, send-hold 700s, backoff-reset 60s

## send hold time: twice a long hold time by default
config hold=300
establish hold=300
a ? timers hold 300s, keepalive 100s, send-hold 600s, backoff-reset 60s

## delay open: wait for the peer's OPEN, send ours when the timer expires
config delay-open=3s
a >> manual-start
a > tcp-connected local
    stop connect-retry
    arm delay-open 3s
a = Connect
a ? wants remote no
a > expire delay-open
    send OPEN
    arm hold 240s
    state Connect -> OpenSent

## delay open: the peer's OPEN first
config delay-open=3s passive
a > manual-start
    state Idle -> Active
a > tcp-connected remote
    arm delay-open 3s
a > recv open
    send OPEN
    send KEEPALIVE
    stop delay-open
    arm hold 90s
    arm keepalive 30s
    state Active -> OpenConfirm
a > recv keepalive
    arm hold 90s
    arm send-hold 480s
    arm backoff-reset 60s
    state OpenConfirm -> Established
    established AS 65002 id 10.0.0.2 hold 90s keepalive 30s

## delay open: other messages or a failure before our OPEN
config delay-open=3s
a >> manual-start
a >> tcp-connected local
a > recv keepalive
    close
    stop delay-open
    arm idle-hold 1s
    state Connect -> Idle (unexpected KEEPALIVE in Connect)
a >> expire idle-hold
a >> tcp-connected local
a > tcp-failed
    close
    stop delay-open
    arm connect-retry 5s
    state Connect -> Active (connection closed)
a > tcp-connected remote
    stop connect-retry
    arm delay-open 3s
a > recv notification 6/5
    close
    stop delay-open
    arm idle-hold 2s
    state Active -> Idle (received NOTIFICATION 6/5)

## collision, our identifier higher: our connection survives
config local-id=10.0.0.9
a >> manual-start
a >> tcp-connected local
b = secondary a
b = Active
b ? wants remote yes
b > tcp-connected remote
    send OPEN
    arm hold 240s
    state Active -> OpenSent
decide a b -> none
a > recv open
    send KEEPALIVE
    arm hold 90s
    arm keepalive 30s
    state OpenSent -> OpenConfirm
decide a b -> secondary
b > collision-dump
    send NOTIFICATION 6/7
    close
    stop hold
    state OpenSent -> Idle (connection collision resolution)
b ? finished yes
a > recv keepalive
    arm hold 90s
    arm send-hold 480s
    arm backoff-reset 60s
    state OpenConfirm -> Established
    established AS 65002 id 10.0.0.2 hold 90s keepalive 30s

## collision, our identifier lower: the peer's connection survives
a >> manual-start
a >> tcp-connected local
b = secondary a
b >> tcp-connected remote
b > recv open
    send KEEPALIVE
    arm hold 90s
    arm keepalive 30s
    state OpenSent -> OpenConfirm
decide a b -> primary
a > collision-dump
    send NOTIFICATION 6/7
    close
    stop hold
    state OpenSent -> Idle (connection collision resolution)
promote b a
b ? role primary
b > recv keepalive
    arm hold 90s
    arm send-hold 480s
    arm backoff-reset 60s
    state OpenConfirm -> Established
    established AS 65002 id 10.0.0.2 hold 90s keepalive 30s
b > tcp-failed
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (connection closed)
    session down (connection closed)

## collision with equal identifiers: our larger AS keeps our connection
config local-id=10.0.0.2 local-as=65010
a >> manual-start
a >> tcp-connected local
a >> recv open id=10.0.0.2
b = secondary a
b >> tcp-connected remote
decide a b -> secondary
b >> recv open id=10.0.0.2
decide a b -> secondary

## collision with equal identifiers: the peer's larger AS keeps its connection
config local-id=10.0.0.2
a >> manual-start
a >> tcp-connected local
a >> recv open id=10.0.0.2
b = secondary a
b >> tcp-connected remote
decide a b -> primary
b >> recv open id=10.0.0.2
decide a b -> primary

## collision: the peer's connection arrives while our attempt is in flight
a >> manual-start
a ? wants remote no
b = secondary a
b >> tcp-connected remote
b >> recv open
b > recv keepalive
    arm hold 90s
    arm send-hold 480s
    arm backoff-reset 60s
    state OpenConfirm -> Established
    established AS 65002 id 10.0.0.2 hold 90s keepalive 30s
decide a b -> primary
a > collision-dump
    close
    stop connect-retry
    state Connect -> Idle (connection collision resolution)
promote b a
b = Established

## collision: an Established session keeps it against a newcomer
establish
b = secondary a
b >> tcp-connected remote
decide a b -> secondary
b ? wants remote no

## collision: Established against a newcomer in OpenConfirm
config local-id=10.0.0.9
establish
b = secondary a
b >> tcp-connected remote
b >> recv open
decide a b -> secondary
b > collision-dump
    send NOTIFICATION 6/7
    close
    stop hold
    stop keepalive
    state OpenConfirm -> Idle (connection collision resolution)

## collision: a graceful restarter's new connection replaces the Established one
config gr
establish gr
b = secondary a
b >> tcp-connected remote
decide a b -> none
b >> recv open gr
decide a b -> primary
a > collision-dump
    send NOTIFICATION 6/7
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    state Established -> Idle (connection collision resolution)
    session down (connection collision resolution)
promote b a
b > recv keepalive
    arm hold 90s
    arm send-hold 480s
    arm backoff-reset 60s
    state OpenConfirm -> Established
    established AS 65002 id 10.0.0.2 hold 90s keepalive 30s

## collision: the peer resolved it first (6/7 received): restart without penalty
a >> manual-start
a >> tcp-connected local
a >> recv open
a > recv notification 6/7
    close
    stop hold
    stop keepalive
    arm idle-hold 1s
    state OpenConfirm -> Idle (received NOTIFICATION 6/7)
a ? restart-delay 1s
a > collision-dump
    stop idle-hold
a ? finished yes

## a secondary never restarts
a >> manual-start
a >> tcp-connected local
b = secondary a
b >> tcp-connected remote
b > tcp-failed
    close
    stop hold
    state OpenSent -> Idle (connection closed)
b ? finished yes
b > automatic-start
b > manual-start
b = Idle
"#;

// The runner.

struct Script {
    name: String,
    lines: Vec<(usize, String)>,
}

fn scripts() -> Vec<Script> {
    let mut scripts: Vec<Script> = Vec::new();
    for (index, line) in SCRIPTS.lines().enumerate() {
        let number = index + 1;
        if let Some(name) = line.strip_prefix("## ") {
            scripts.push(Script {
                name: name.to_string(),
                lines: Vec::new(),
            });
        } else if !line.trim().is_empty() {
            let script = scripts.last_mut().expect("a line before the first script");
            script.lines.push((number, line.to_string()));
        }
    }
    scripts
}

/// Splits on spaces, keeping "quoted text" as one token (without the quotes).
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').expect("closing quote");
            out.push(format!("\"{}", &quoted[..end]));
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    out
}

fn duration(text: &str) -> Duration {
    if let Some(ms) = text.strip_suffix("ms") {
        Duration::from_millis(ms.parse().unwrap())
    } else if let Some(m) = text.strip_suffix('m') {
        Duration::from_secs(60 * m.parse::<u64>().unwrap())
    } else {
        Duration::from_secs(text.strip_suffix('s').unwrap().parse().unwrap())
    }
}

fn code_subcode(text: &str) -> (u8, u8) {
    let (code, subcode) = text.split_once('/').unwrap();
    (code.parse().unwrap(), subcode.parse().unwrap())
}

fn notification(args: &[String]) -> Notification {
    let (code, subcode) = code_subcode(&args[0]);
    match args.get(1).map(String::as_str) {
        Some(text) if text.starts_with('"') => Notification::shutdown(subcode, &text[1..]),
        Some("data") => Notification::new(code, subcode, hex::decode(&args[2]).unwrap()),
        _ => Notification::new(code, subcode, Vec::new()),
    }
}

fn family(name: &str) -> Family {
    Family::parse(name).unwrap()
}

fn config(args: &[String]) -> SessionConfig {
    let mut config = SessionConfig::new(65001, Ipv4Addr::new(10, 0, 0, 1), PeerAs::Exact(65002));
    for arg in args {
        let (key, value) = arg.split_once('=').unwrap_or((arg, ""));
        match key {
            "local-as" => config.local_as = value.parse().unwrap(),
            "local-id" => config.local_id = value.parse().unwrap(),
            "peer-as" if value == "any" => config.peer_as = PeerAs::Any,
            "peer-as" if value.contains(',') => {
                config.peer_as =
                    PeerAs::OneOf(value.split(',').map(|asn| asn.parse().unwrap()).collect())
            }
            "peer-as" => config.peer_as = PeerAs::Exact(value.parse().unwrap()),
            "hold" => config.hold_time = value.parse().unwrap(),
            "keepalive" => config.keepalive = Some(value.parse().unwrap()),
            "connect-retry" => config.connect_retry = duration(value),
            "send-hold" => config.send_hold_time = Some(duration(value)),
            "delay-open" => config.delay_open = Some(duration(value)),
            "backoff" => {
                let parts: Vec<Duration> = value.split(',').map(duration).collect();
                config.backoff.initial = parts[0];
                config.backoff.max = parts[1];
                config.backoff.reset_after = parts[2];
            }
            "require" => config.required_capabilities.push(value.parse().unwrap()),
            "families" => config.capabilities.families = value.split(',').map(family).collect(),
            "gr" => config.capabilities.graceful_restart = Some(graceful_restart()),
            "passive" => config.passive = true,
            "family-errors" => {
                assert_eq!(value, "disable");
                config.family_errors = FamilyErrorPolicy::DisableFamily;
            }
            _ => panic!("unknown config key {key}"),
        }
    }
    config
}

fn graceful_restart() -> GracefulRestart {
    GracefulRestart {
        flags: 0,
        restart_time: 120,
        families: vec![GracefulRestartFamily {
            family: Family::IPV4_UNICAST,
            flags: GracefulRestartFamily::FORWARDING_STATE,
        }],
    }
}

/// The peer's OPEN: AS 65002 (4-octet AS capability), id 10.0.0.2, hold time 90,
/// IPv4 unicast, route refresh and enhanced route refresh, unless told otherwise.
fn peer_open(args: &[String]) -> Open {
    let (mut asn, mut my_as, mut as4, mut id) = (65002u32, None, true, Ipv4Addr::new(10, 0, 0, 2));
    let (mut hold, mut version, mut families) = (90u16, 4u8, vec![Family::IPV4_UNICAST]);
    let (mut gr, mut route_refresh) = (false, true);
    for arg in args {
        let (key, value) = arg.split_once('=').unwrap_or((arg, ""));
        match key {
            "as" => asn = value.parse().unwrap(),
            "my-as" => my_as = Some(value.parse().unwrap()),
            "no-as4" => as4 = false,
            "id" => id = value.parse().unwrap(),
            "hold" => hold = value.parse().unwrap(),
            "version" => version = value.parse().unwrap(),
            "families" => families = value.split(',').map(family).collect(),
            "gr" => gr = true,
            "no-rr" => route_refresh = false,
            _ => panic!("unknown OPEN parameter {key}"),
        }
    }
    let mut capabilities: Vec<Capability> = families
        .into_iter()
        .map(|family| Capability::Multiprotocol { family })
        .collect();
    if route_refresh {
        capabilities.extend([Capability::RouteRefresh, Capability::EnhancedRouteRefresh]);
    }
    if as4 {
        capabilities.push(Capability::FourOctetAs { asn });
    }
    if gr {
        capabilities.push(Capability::GracefulRestart(graceful_restart()));
    }
    let mut open = Open::new(asn, hold, id, capabilities);
    open.version = version;
    if !as4 {
        open.my_as = u16::try_from(asn).unwrap();
    }
    if let Some(my_as) = my_as {
        open.my_as = my_as;
    }
    open
}

fn decoded(message: Message) -> Event {
    Event::Received(Ok(Decoded {
        message,
        action: bgp_proto::Action::None,
        errors: Vec::new(),
    }))
}

/// A valid UPDATE: 198.51.100.0/24 from AS 65002 via 192.0.2.1.
const UPDATE: &str = "ffffffffffffffffffffffffffffffff002f02000000144001010040020602010000fdea400304c000020118c63364";

fn event(fsm: &Fsm, words: &[String]) -> Event {
    let args = &words[1..];
    match words[0].as_str() {
        "manual-start" => Event::ManualStart,
        "manual-start-passive" => Event::ManualStartPassive,
        "automatic-start" => Event::AutomaticStart,
        "manual-stop" => match args.first() {
            None => Event::ManualStop { notification: None },
            Some(text) if text.starts_with('"') => Event::shutdown(&text[1..]),
            Some(_) => Event::ManualStop {
                notification: Some(notification(args)),
            },
        },
        "automatic-stop" => Event::AutomaticStop {
            notification: notification(&args[..1]),
            restart_after: (args.get(1).map(String::as_str) == Some("after"))
                .then(|| duration(&args[2])),
        },
        "tcp-connected" => Event::TcpConnected(match args[0].as_str() {
            "local" => Initiator::Local,
            "remote" => Initiator::Remote,
            other => panic!("initiator {other}"),
        }),
        "tcp-failed" => Event::TcpFailed,
        "recv" => {
            let rest = &args[1..];
            match args[0].as_str() {
                "open" => decoded(Message::Open(peer_open(rest))),
                "keepalive" => decoded(Message::Keepalive),
                "update" => Event::Received(decode_message(
                    &hex::decode(UPDATE).unwrap(),
                    &fsm.codec_context(),
                )),
                "notification" => decoded(Message::Notification(notification(rest))),
                "route-refresh" => {
                    let subtype = match rest.get(1).map(String::as_str) {
                        Some("subtype") => rest[2].parse().unwrap(),
                        _ => RouteRefresh::REQUEST,
                    };
                    decoded(Message::RouteRefresh(RouteRefresh {
                        family: family(&rest[0]),
                        subtype,
                    }))
                }
                "hex" => Event::Received(decode_message(
                    &hex::decode(rest.concat()).unwrap(),
                    &fsm.codec_context(),
                )),
                other => panic!("unknown message {other}"),
            }
        }
        "framing-error" => Event::FramingError(match args[0].as_str() {
            "marker" => FramingError::BadMarker,
            "length" => FramingError::BadLength {
                length: args[1].parse().unwrap(),
                max: 4096,
            },
            "io" => FramingError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            other => panic!("framing error {other}"),
        }),
        "expire" => Event::TimerExpired(
            *Timer::ALL
                .iter()
                .find(|timer| timer.name() == args[0])
                .unwrap_or_else(|| panic!("timer {}", args[0])),
        ),
        "output-progressed" => Event::OutputProgressed,
        "collision-dump" => Event::CollisionDump,
        other => panic!("unknown event {other}"),
    }
}

/// Runs the active open without checking its actions.
fn establish(fsm: &mut Fsm, open: &[String]) {
    fsm.handle(Event::ManualStart);
    fsm.handle(Event::TcpConnected(Initiator::Local));
    fsm.handle(decoded(Message::Open(peer_open(open))));
    fsm.handle(decoded(Message::Keepalive));
    assert_eq!(fsm.state(), State::Established, "establish");
}

struct Run {
    config: SessionConfig,
    fsms: BTreeMap<String, Fsm>,
    /// Per state machine, the actions of its last UPDATE delivered (for `disabled`).
    last_actions: BTreeMap<String, Vec<Action>>,
}

impl Run {
    fn fsm(&mut self, name: &str) -> &mut Fsm {
        if !self.fsms.contains_key(name) {
            assert_eq!(name, "a", "only `a` is made implicitly");
            self.fsms
                .insert(name.to_string(), Fsm::new(self.config.clone()).unwrap());
        }
        self.fsms.get_mut(name).unwrap()
    }

    fn query(&mut self, name: &str, words: &[String]) -> (String, String) {
        let expected = words[1..].join(" ");
        let fsm = self.fsm(name);
        let actual = match words[0].as_str() {
            "wants" => {
                let initiator = match words[1].as_str() {
                    "local" => Initiator::Local,
                    _ => Initiator::Remote,
                };
                let yes = fsm.wants_connection(initiator);
                format!("{} {}", words[1], if yes { "yes" } else { "no" })
            }
            "finished" => String::from(if fsm.is_finished() { "yes" } else { "no" }),
            "counter" => fsm.connect_retry_counter().to_string(),
            "restart-delay" => format!("{}s", fsm.restart_delay().as_secs()),
            "last-error" => fsm
                .last_error()
                .map(ToString::to_string)
                .unwrap_or_default(),
            "role" => format!("{:?}", fsm.role()).to_lowercase(),
            "timers" => {
                let timers: Vec<String> = fsm
                    .armed_timers()
                    .map(|(timer, duration)| format!("{timer} {}s", duration.as_secs()))
                    .collect();
                if timers.is_empty() {
                    String::from("none")
                } else {
                    timers.join(", ")
                }
            }
            "context" => {
                let negotiated = fsm.negotiated().unwrap();
                let mut text = format!(
                    "AS {} {}",
                    negotiated.peer_as,
                    if negotiated.context.ibgp {
                        "ibgp"
                    } else {
                        "ebgp"
                    }
                );
                if !negotiated.context.four_octet_as {
                    text.push_str(" as2");
                }
                text
            }
            "communication" => match fsm.last_error() {
                Some(bgp_proto::fsm::DownReason::NotificationReceived {
                    communication: Some(Ok(text)),
                    ..
                }) => text.clone(),
                other => format!("{other:?}"),
            },
            "disabled" => {
                let actions = &self.last_actions[name];
                let families: Vec<String> = actions
                    .iter()
                    .filter_map(|action| match action {
                        Action::Update(update) => Some(update),
                        _ => None,
                    })
                    .flat_map(|update| update.disabled_families())
                    .map(|family| family.to_string())
                    .collect();
                families.join(", ")
            }
            other => panic!("unknown query {other}"),
        };
        (expected, actual)
    }
}

fn run(script: &Script) -> Result<(), String> {
    let mut lines = script.lines.iter().peekable();
    let mut run = Run {
        config: config(&[]),
        fsms: BTreeMap::new(),
        last_actions: BTreeMap::new(),
    };
    while let Some((number, line)) = lines.next() {
        let words = tokens(line);
        let fail = |expected: &str, actual: &str| {
            Err(format!(
                "line {number}: `{}`\n expected:\n{expected}\n actual:\n{actual}",
                line.trim()
            ))
        };
        match (words[0].as_str(), words.get(1).map(String::as_str)) {
            ("config", _) => {
                assert!(run.fsms.is_empty(), "config after the first event");
                run.config = config(&words[1..]);
            }
            ("establish", _) => establish(run.fsm("a"), &words[1..]),
            ("decide", _) => {
                let decision = collision::decide(&run.fsms[&words[1]], &run.fsms[&words[2]]);
                let actual = match decision {
                    None => "none",
                    Some(Loser::Primary) => "primary",
                    Some(Loser::Secondary) => "secondary",
                };
                if actual != words[4] {
                    return fail(&words[4], actual);
                }
            }
            ("promote", _) => {
                let previous = run.fsms.remove(&words[2]).unwrap();
                run.fsms.get_mut(&words[1]).unwrap().promote(&previous);
            }
            (name, Some(">>")) => {
                let fsm = run.fsm(name);
                let event = event(fsm, &words[2..]);
                let actions = fsm.handle(event);
                run.last_actions.insert(name.to_string(), actions);
            }
            (name, Some(">")) => {
                let fsm = run.fsm(name);
                let event = event(fsm, &words[2..]);
                let actions = fsm.handle(event);
                let actual: Vec<String> = actions.iter().map(ToString::to_string).collect();
                let mut expected = Vec::new();
                while let Some((_, next)) = lines.peek() {
                    if !next.starts_with(' ') {
                        break;
                    }
                    expected.push(next.trim().to_string());
                    lines.next();
                }
                if actual != expected {
                    return fail(&expected.join("\n"), &actual.join("\n"));
                }
                run.last_actions.insert(name.to_string(), actions);
            }
            (name, Some("=")) if words[2] == "secondary" => {
                let secondary = run.fsm(&words[3]).secondary();
                run.fsms.insert(name.to_string(), secondary);
            }
            (name, Some("=")) => {
                let actual = run.fsm(name).state().to_string();
                if actual != words[2] {
                    return fail(&words[2], &actual);
                }
            }
            (name, Some("?")) => {
                let (expected, actual) = run.query(name, &words[2..]);
                if actual != expected {
                    return fail(&expected, &actual);
                }
            }
            _ => panic!("line {number}: cannot read `{line}`"),
        }
    }
    Ok(())
}

#[test]
fn battery() {
    let scripts = scripts();
    assert!(scripts.len() > 60, "{} scripts", scripts.len());
    let failures: Vec<String> = scripts
        .iter()
        .filter_map(|script| {
            run(script)
                .err()
                .map(|error| format!("## {}\n{error}", script.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} scripts failed:\n\n{}",
        failures.len(),
        scripts.len(),
        failures.join("\n\n")
    );
}

#[test]
fn established_carries_the_negotiated_parameters() {
    let mut config = config(&["gr".into(), "families=ipv4,ipv6".into()]);
    config.capabilities.extended_message = true;
    config.capabilities.hostname = Some(("node-1".into(), String::new()));
    let mut fsm = Fsm::new(config).unwrap();
    fsm.handle(Event::ManualStart);
    fsm.handle(Event::TcpConnected(Initiator::Remote));
    let actions = fsm.handle(Event::TcpConnected(Initiator::Local));
    let Some(Action::Send(open)) = actions.first() else {
        panic!("{actions:?}");
    };
    let Message::Open(open) = open.as_ref() else {
        panic!("{open:?}");
    };
    assert_eq!(open, fsm.local_open());
    assert!(open.has_capability(6) && open.has_capability(64) && open.has_capability(73));
    assert_eq!(
        open.families(),
        vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    // The encoded OPEN decodes to itself.
    let ctx = fsm.codec_context();
    let bytes = Message::Open(open.clone()).to_bytes(&ctx).unwrap();
    assert_eq!(
        decode_message(&bytes, &ctx).unwrap().message,
        Message::Open(open.clone())
    );

    let mut peer = peer_open(&["gr".into(), "families=ipv6".into()]);
    peer.capabilities.push(Capability::ExtendedMessage);
    peer.capabilities.push(Capability::Hostname {
        hostname: "tor-1".into(),
        domain: "example.net".into(),
    });
    fsm.handle(decoded(Message::Open(peer.clone())));
    let actions = fsm.handle(decoded(Message::Keepalive));
    let Some(Action::Established(negotiated)) = actions.last() else {
        panic!("{actions:?}");
    };
    assert_eq!(negotiated.peer_open, peer);
    assert_eq!(negotiated.local_open, *open);
    assert_eq!(negotiated.peer_as, 65002);
    assert_eq!(negotiated.initiator, Initiator::Local);
    assert_eq!(negotiated.families, vec![Family::IPV6_UNICAST]);
    assert!(negotiated.route_refresh && negotiated.enhanced_route_refresh);
    assert!(negotiated.graceful_restart);
    assert_eq!(negotiated.peer_graceful_restart, Some(graceful_restart()));
    assert_eq!(
        negotiated.peer_hostname,
        Some(("tor-1".into(), "example.net".into()))
    );
    assert!(negotiated.context.extended_message && negotiated.context.four_octet_as);
    assert!(!negotiated.context.ibgp);
    assert_eq!(fsm.codec_context(), negotiated.context);
    assert_eq!(fsm.codec_context().max_message_len(), 65535);
    assert_eq!(negotiated.send_hold_time, Some(Duration::from_secs(480)));
}

#[test]
fn invalid_configurations_are_refused() {
    let mut config = config(&[]);
    config.hold_time = 1;
    assert_eq!(
        Fsm::new(config).unwrap_err().to_string(),
        "hold time 1 s is refused: use 0 or at least 3"
    );
}
