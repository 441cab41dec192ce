//! Scripts of the session state machine, part 1: opening a session.
//!
//! The active and passive open, connection attempts, every OPEN check,
//! hold time and keepalive negotiation and timing, UPDATE and ROUTE-REFRESH
//! delivery, RFC 7606 actions and unexpected messages per state. The language and the runner are in `fsm.rs`, which
//! includes this file as a module; compiled on its own (every file in `tests/` is
//! a test crate), it only checks that the text is a list of scripts.

/// The line of this file where `SCRIPTS` starts, for failure messages.
pub const SCRIPTS_LINE: usize = line!() as usize + 2;
/// The scripts.
pub const SCRIPTS: &str = r#"
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
a > manual-start
a > manual-start-passive
a > automatic-start
a > tcp-connected remote
a = Established

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
a ? wants local no
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
a > recv update
    deliver UPDATE none
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
"#;

#[test]
fn the_text_is_a_list_of_scripts() {
    assert!(SCRIPTS.trim_start().starts_with("## ") && SCRIPTS_LINE > 1);
}
