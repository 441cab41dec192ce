//! Scripts of the session state machine, part 2: the life of a session.
//!
//! NOTIFICATIONs received in each state, broken streams, closed
//! connections, manual and automatic stops, the restart backoff, the send hold timer
//! (RFC 9687), delay open, and connection collisions (RFC 4271 6.8). The language and the runner are in `fsm.rs`, which
//! includes this file as a module; compiled on its own (every file in `tests/` is
//! a test crate), it only checks that the text is a list of scripts.

/// The line of this file where `SCRIPTS` starts, for failure messages.
pub const SCRIPTS_LINE: usize = line!() as usize + 2;
/// The scripts.
pub const SCRIPTS: &str = r#"
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
    state Established -> Idle (received NOTIFICATION 6/9 of 6/2)
    session down (received NOTIFICATION 6/9 of 6/2)

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

## RFC 8538: with the N bit on both sides, a manual stop goes out as Hard Reset
config gr-n
establish gr-n
a > manual-stop "maintenance window"
    send NOTIFICATION 6/9 of 6/2 "maintenance window"
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    state Established -> Idle (stopped, sent NOTIFICATION 6/9 of 6/2 "maintenance window")
    session down (stopped, sent NOTIFICATION 6/9 of 6/2 "maintenance window")

## RFC 8538: the N bit on one side only: no Hard Reset
config gr-n
establish gr
a > manual-stop 6/3
    send NOTIFICATION 6/3
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    state Established -> Idle (stopped, sent NOTIFICATION 6/3)
    session down (stopped, sent NOTIFICATION 6/3)

## RFC 8538: maximum prefixes is a Hard Reset, a configuration change is not
config gr-n
establish gr-n
a > automatic-stop 6/1
    send NOTIFICATION 6/9 of 6/1
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 1s
    state Established -> Idle (stopped by the speaker, sent NOTIFICATION 6/9 of 6/1)
    session down (stopped by the speaker, sent NOTIFICATION 6/9 of 6/1)
a > expire idle-hold
    connect
    arm connect-retry 5s
    state Idle -> Connect
a >> tcp-connected local
a >> recv open gr-n
a >> recv keepalive
a = Established
a > automatic-stop 6/6
    send NOTIFICATION 6/6
    close
    stop hold
    stop keepalive
    stop send-hold
    stop backoff-reset
    arm idle-hold 2s
    state Established -> Idle (stopped by the speaker, sent NOTIFICATION 6/6)
    session down (stopped by the speaker, sent NOTIFICATION 6/6)

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

## automatic stop before the OPEN: no NOTIFICATION, restart after the backoff
a >> manual-start
a > automatic-stop 6/8
    close
    stop connect-retry
    arm idle-hold 1s
    state Connect -> Idle (stopped by the speaker)
a > automatic-start
    connect
    stop idle-hold
    arm connect-retry 5s
    state Idle -> Connect

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

#[test]
fn the_text_is_a_list_of_scripts() {
    assert!(SCRIPTS.trim_start().starts_with("## ") && SCRIPTS_LINE > 1);
}
