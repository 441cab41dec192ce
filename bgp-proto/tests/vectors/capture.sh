#!/usr/bin/env bash
# Regenerates peers.txt: BGP messages captured from real FRR, BIRD and GoBGP peering
# with each other, for bgp-proto's both-ways vector test (tests/vectors.rs). The tests
# only read the committed peers.txt; this script is for regenerating it.
#
#   sudo bgp-proto/tests/vectors/capture.sh [OUTPUT]     (default: next to this script)
#
# Needs root, iproute2, FRR 8.4, BIRD 2, GoBGP 3, tcpdump, tshark and python3.
#
# Topology: three network namespaces in a triangle of veth pairs, IPv4 sessions
# carrying IPv4 and IPv6 unicast, all eBGP, graceful restart on, short timers:
#
#   FRR  AS 65001      10.0.1.1 --- 10.0.1.2   BIRD AS 65002   (add-path on IPv4)
#   FRR  AS 65001     fd00:1::1 --- fd00:1::2  BIRD AS 65002   (IPv4 only, with an IPv6
#                                              next hop: RFC 8950 extended next hop)
#   BIRD AS 65002      10.0.2.1 --- 10.0.2.2   GoBGP AS 65003  (BIRD: as4 off, so this
#                                              session is 2-octet: AS_TRANS, AS4_PATH)
#   GoBGP AS 65003     10.0.3.1 --- 10.0.3.2   FRR AS 65001
#
# Each daemon originates one IPv4 and one IPv6 prefix with communities and large
# communities; GoBGP's carry the 4-octet AS 4200000009 in their AS_PATH. Once every route is everywhere, FRR asks its peers for a route refresh,
# GoBGP withdraws its prefixes, and each daemon shuts one session down with an RFC 8203
# shutdown communication. tcpdump records each link; tshark reassembles
# the TCP streams and the embedded python splits them into messages.
# Namespaces, links and processes are removed on exit, whatever happens.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
output="${1:-$here/peers.txt}"
tag="wcap$$"
ns_frr="$tag-frr" ns_bird="$tag-bird" ns_gobgp="$tag-gobgp"
work="$(mktemp -d /tmp/wren-capture.XXXXXX)"
pids=()

cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pidfile in "$work"/frr/*.pid "$work"/bird.pid; do
        [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 0.5
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for ns in "$ns_frr" "$ns_bird" "$ns_gobgp"; do ip netns del "$ns" 2>/dev/null || true; done
    if [[ $status -ne 0 ]]; then
        echo "capture failed (status $status); logs kept in $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

die() { echo "capture.sh: $*" >&2; exit 1; }
for tool in ip tcpdump tshark python3 bird birdc gobgpd gobgp vtysh /usr/lib/frr/bgpd; do
    command -v "$tool" >/dev/null || die "missing $tool"
done
[[ $(id -u) -eq 0 ]] || die "must run as root"

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds.
wait_for() {
    local limit=$1 what=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${limit}s waiting for $what"
        sleep 0.5
    done
}

# --- topology -------------------------------------------------------------------------
for ns in "$ns_frr" "$ns_bird" "$ns_gobgp"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
# link NS_A IF_A ADDR4_A ADDR6_A NS_B IF_B ADDR4_B ADDR6_B
link() {
    ip -n "$1" link add "$2" type veth peer name "$6" netns "$5"
    ip -n "$1" addr add "$3/30" dev "$2"
    ip -n "$1" addr add "$4/64" dev "$2" nodad
    ip -n "$5" addr add "$7/30" dev "$6"
    ip -n "$5" addr add "$8/64" dev "$6" nodad
    ip -n "$1" link set "$2" up
    ip -n "$5" link set "$6" up
}
link "$ns_frr" to-bird 10.0.1.1 fd00:1::1 "$ns_bird" to-frr 10.0.1.2 fd00:1::2
link "$ns_bird" to-gobgp 10.0.2.1 fd00:2::1 "$ns_gobgp" to-bird 10.0.2.2 fd00:2::2
link "$ns_gobgp" to-frr 10.0.3.1 fd00:3::1 "$ns_frr" to-gobgp 10.0.3.2 fd00:3::2

# --- captures -------------------------------------------------------------------------
capture() { # NS IF NAME
    ip netns exec "$1" tcpdump -i "$2" -U -s 0 -w "$work/$3.pcap" 'tcp port 179' 2>"$work/$3.tcpdump" &
    pids+=($!)
    wait_for 20 "tcpdump on $2" grep -q "listening on" "$work/$3.tcpdump"
}
capture "$ns_frr" to-bird frr-bird
capture "$ns_bird" to-gobgp bird-gobgp
capture "$ns_gobgp" to-frr gobgp-frr

# --- FRR ------------------------------------------------------------------------------
mkdir -p "$work/frr"
chmod 711 "$work"
chown frr:frr "$work/frr"
cat >"$work/frr/frr.conf" <<EOF
hostname frr
!
route-map TAG permit 10
 set community 65001:100 65001:200
 set large-community 65001:1:2
!
router bgp 65001
 bgp router-id 10.0.0.1
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp graceful-restart
 timers bgp 3 9
 neighbor 10.0.1.2 remote-as 65002
 neighbor 10.0.1.2 timers connect 2
 neighbor 10.0.3.1 remote-as 65003
 neighbor 10.0.3.1 timers connect 2
 neighbor fd00:1::2 remote-as 65002
 neighbor fd00:1::2 timers connect 2
 neighbor fd00:1::2 capability extended-nexthop
 address-family ipv4 unicast
  network 198.51.100.0/24 route-map TAG
  neighbor 10.0.1.2 addpath-tx-all-paths
  neighbor fd00:1::2 activate
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:100::/48 route-map TAG
  neighbor 10.0.1.2 activate
  neighbor 10.0.3.1 activate
 exit-address-family
!
EOF
chmod 644 "$work/frr/frr.conf"
for daemon in zebra staticd bgpd; do
    ip netns exec "$ns_frr" /usr/lib/frr/$daemon -d -z "$work/frr/zserv.api" --vty_socket "$work/frr" \
        -i "$work/frr/$daemon.pid" -f "$work/frr/frr.conf" --log "file:$work/frr/$daemon.log"
    wait_for 30 "FRR $daemon" test -S "$work/frr/$daemon.vty"
done
vtysh_frr() { ip netns exec "$ns_frr" vtysh --vty_socket "$work/frr" "$@"; }

# --- BIRD -----------------------------------------------------------------------------
cat >"$work/bird.conf" <<EOF
log "$work/bird.log" all;
router id 10.0.0.2;
protocol device { }
protocol direct { ipv4; ipv6; interface "to-*"; }
protocol static static4 { ipv4; route 192.0.2.0/24 blackhole; }
protocol static static6 { ipv6; route 2001:db8:200::/48 blackhole; }
filter wren_export {
    if source = RTS_STATIC then {
        bgp_community.add((65002, 100));
        bgp_large_community.add((65002, 1, 2));
        accept;
    }
    if source = RTS_BGP then accept;
    reject;
}
template bgp peer {
    hold time 9;
    keepalive time 3;
    connect delay time 1;
    connect retry time 2;
    graceful restart on;
}
protocol bgp frr from peer {
    local 10.0.1.2 as 65002;
    neighbor 10.0.1.1 as 65001;
    ipv4 { import all; export filter wren_export; add paths on; };
    ipv6 { import all; export filter wren_export; next hop address fd00:1::2; };
}
protocol bgp frr6 from peer {
    local fd00:1::2 as 65002;
    neighbor fd00:1::1 as 65001;
    ipv4 { import all; export filter wren_export; extended next hop on; };
}
protocol bgp gobgp from peer {
    local 10.0.2.1 as 65002;
    neighbor 10.0.2.2 as 65003;
    enable as4 off;
    ipv4 { import all; export filter wren_export; };
    ipv6 { import all; export filter wren_export; next hop address fd00:2::1; };
}
EOF
ip netns exec "$ns_bird" bird -c "$work/bird.conf" -s "$work/bird.ctl" -P "$work/bird.pid"
wait_for 30 "BIRD control socket" test -S "$work/bird.ctl"
birdc_() { ip netns exec "$ns_bird" birdc -s "$work/bird.ctl" "$@"; }

# --- GoBGP ----------------------------------------------------------------------------
gobgp_neighbor() { # ADDRESS AS
    cat <<EOF
[[neighbors]]
  [neighbors.config]
    neighbor-address = "$1"
    peer-as = $2
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 2
  [neighbors.graceful-restart.config]
    enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
EOF
}
{
    cat <<EOF
[global.config]
  as = 65003
  router-id = "10.0.0.3"
EOF
    gobgp_neighbor 10.0.2.1 65002
    gobgp_neighbor 10.0.3.2 65001
} >"$work/gobgpd.toml"
ip netns exec "$ns_gobgp" gobgpd -f "$work/gobgpd.toml" -t toml --api-hosts 127.0.0.1:50051 \
    >"$work/gobgpd.log" 2>&1 &
pids+=($!)
gobgp_() { ip netns exec "$ns_gobgp" gobgp "$@"; }
wait_for 30 "GoBGP API" gobgp_ global
gobgp_ global rib -a ipv4 add 203.0.113.0/24 aspath 4200000009 community 65003:300 large-community 4200000009:3:4
gobgp_ global rib -a ipv6 add 2001:db8:300::/48 aspath 4200000009 community 65003:300 large-community 4200000009:3:4

# --- convergence: every prefix everywhere ---------------------------------------------
has_all_frr() {
    local v4 v6
    v4=$(vtysh_frr -c 'show bgp ipv4 unicast')
    v6=$(vtysh_frr -c 'show bgp ipv6 unicast')
    grep -q 192.0.2.0/24 <<<"$v4" && grep -q 203.0.113.0/24 <<<"$v4" &&
        grep -q 2001:db8:200::/48 <<<"$v6" && grep -q 2001:db8:300::/48 <<<"$v6"
}
has_all_bird() {
    local routes
    routes=$(birdc_ show route all)
    grep -q 198.51.100.0/24 <<<"$routes" && grep -q 203.0.113.0/24 <<<"$routes" &&
        grep -q 2001:db8:100::/48 <<<"$routes" && grep -q 2001:db8:300::/48 <<<"$routes"
}
has_all_gobgp() {
    local v4 v6
    v4=$(gobgp_ global rib -a ipv4)
    v6=$(gobgp_ global rib -a ipv6)
    grep -q 198.51.100.0/24 <<<"$v4" && grep -q 192.0.2.0/24 <<<"$v4" &&
        grep -q 2001:db8:100::/48 <<<"$v6" && grep -q 2001:db8:200::/48 <<<"$v6"
}
wait_for 90 "FRR to learn every prefix" has_all_frr
wait_for 90 "BIRD to learn every prefix" has_all_bird
wait_for 90 "GoBGP to learn every prefix" has_all_gobgp
# Let a round of keepalives and any End-of-RIB go by.
sleep 4

# --- route refresh (BIRD answers with enhanced route refresh markers) and withdrawals --
vtysh_frr -c 'clear bgp ipv4 unicast 10.0.1.2 in' -c 'clear bgp ipv6 unicast 10.0.3.1 in'
gobgp_ global rib -a ipv4 del 203.0.113.0/24
gobgp_ global rib -a ipv6 del 2001:db8:300::/48
withdrawn_frr() { ! vtysh_frr -c 'show bgp ipv4 unicast' | grep -q 203.0.113.0/24 &&
    ! vtysh_frr -c 'show bgp ipv6 unicast' | grep -q 2001:db8:300::/48; }
withdrawn_bird() { ! birdc_ show route all | grep -qE '203\.0\.113\.0/24|2001:db8:300::/48'; }
wait_for 30 "FRR to drop GoBGP's prefixes" withdrawn_frr
wait_for 30 "BIRD to drop GoBGP's prefixes" withdrawn_bird
sleep 2

# --- shutdowns with a shutdown communication ------------------------------------------
vtysh_frr -c 'configure terminal' -c 'router bgp 65001' \
    -c 'neighbor 10.0.1.2 shutdown message wren capture: FRR shuts this session down'
birdc_ disable gobgp '"wren capture: BIRD disables this session"'
# GoBGP 3.10 sends the communication only with the deprecated `shutdown`, not `disable`.
gobgp_ neighbor 10.0.3.2 shutdown --reason "wren capture: GoBGP shuts this session down"
down_frr() { ! vtysh_frr -c 'show bgp summary' | grep -qE '10\.0\.(1\.2|3\.1) .* [0-9]+ +[0-9]+ +N/A$' &&
    ! vtysh_frr -c 'show bgp neighbors 10.0.3.1' | grep -q 'BGP state = Established'; }
down_bird() { birdc_ show protocols gobgp | grep -qv Established; }
wait_for 30 "FRR's sessions to go down" down_frr
wait_for 30 "BIRD's GoBGP session to go down" down_bird
sleep 2

for pid in "${pids[@]:0:3}"; do kill -INT "$pid"; done
for pid in "${pids[@]:0:3}"; do wait "$pid" || true; done

# --- extraction -----------------------------------------------------------------------
versions="FRR $(dpkg-query -W -f '${Version}' frr), BIRD $(dpkg-query -W -f '${Version}' bird2), GoBGP $(dpkg-query -W -f '${Version}' gobgpd)"
python3 - "$output" "$versions" "$work" <<'PYTHON'
import re, subprocess, sys

output, versions, work = sys.argv[1:4]
# pcap name -> (session name, {address: speaker})
links = {
    "frr-bird": {"10.0.1.1": "frr", "10.0.1.2": "bird", "fd00:1::1": "frr", "fd00:1::2": "bird"},
    "bird-gobgp": {"10.0.2.1": "bird", "10.0.2.2": "gobgp"},
    "gobgp-frr": {"10.0.3.1": "gobgp", "10.0.3.2": "frr"},
}
label = {"frr": "FRR", "bird": "BIRD", "gobgp": "GoBGP"}
types = {1: "OPEN", 2: "UPDATE", 3: "NOTIFICATION", 4: "KEEPALIVE", 5: "ROUTE-REFRESH"}

def describe(message):
    kind = message[18]
    name = types.get(kind, f"type {kind}")
    if kind == 3:
        return f"{name} {message[19]}/{message[20]}"
    if kind != 2:
        return name
    body = message[19:]
    wlen = int.from_bytes(body[0:2], "big")
    alen = int.from_bytes(body[2 + wlen:4 + wlen], "big")
    attrs, at, end, codes, families = body[4 + wlen:4 + wlen + alen], 0, alen, [], []
    while at < end:
        flags, code = attrs[at], attrs[at + 1]
        ext = flags & 0x10
        length = int.from_bytes(attrs[at + 2:at + 4], "big") if ext else attrs[at + 2]
        value = attrs[at + (4 if ext else 3):at + (4 if ext else 3) + length]
        codes.append(code)
        if code in (14, 15):
            families.append(("reach " if code == 14 else "unreach ") + f"afi {int.from_bytes(value[0:2], 'big')} safi {value[2]}")
        at += (4 if ext else 3) + length
    nlri = len(body) - 4 - wlen - alen
    if not codes and wlen == 0 and nlri == 0:
        return "UPDATE End-of-RIB ipv4 unicast"
    if codes == [15] and len(attrs) <= 7:
        return "UPDATE End-of-RIB " + families[0].replace("unreach ", "")
    parts = [f"attributes {codes}"]
    if wlen:
        parts.append(f"withdrawn {wlen} octets")
    if nlri:
        parts.append(f"nlri {nlri} octets")
    parts += families
    return "UPDATE " + ", ".join(parts)

lines = [
    "# BGP messages from real peers, captured by capture.sh (same folder): " + versions + ".",
    "# Block format: `session NAME ebgp|ibgp` starts one TCP connection; each line after it",
    "# is `SPEAKER HEX` (the whole message, header included), preceded by a comment naming",
    "# the source daemon, its peer and the message. The test negotiates each direction's",
    "# context from the two OPENs of the block.",
]
for pcap, speakers in links.items():
    path = f"{work}/{pcap}.pcap"
    streams = subprocess.run(["tshark", "-r", path, "-T", "fields", "-e", "tcp.stream"],
                             check=True, capture_output=True, text=True).stdout.split()
    for stream in sorted(set(int(s) for s in streams)):
        follow = subprocess.run(["tshark", "-r", path, "-q", "-z", f"follow,tcp,raw,{stream}"],
                                check=True, capture_output=True, text=True).stdout
        nodes, data = {}, {0: bytearray(), 1: bytearray()}
        for line in follow.splitlines():
            match = re.match(r"Node (\d): (.+):(\d+)$", line)
            if match:
                nodes[int(match[1])] = match[2].strip("[]")
            elif re.fullmatch(r"\t?[0-9a-f]+", line):
                data[1 if line.startswith("\t") else 0] += bytes.fromhex(line.strip())
        if not any(data.values()):
            continue
        lines.append("")
        lines.append(f"session {pcap}-{stream} ebgp")
        for node in (0, 1):
            speaker = speakers[nodes[node]]
            peer = speakers[nodes[1 - node]]
            stream_bytes, at, keepalives = bytes(data[node]), 0, 0
            while at + 19 <= len(stream_bytes):
                length = int.from_bytes(stream_bytes[at + 16:at + 18], "big")
                message = stream_bytes[at:at + length]
                at += length
                if message[18] == 4:
                    keepalives += 1
                    if keepalives > 1:
                        continue
                lines.append(f"# {label[speaker]} -> {label[peer]}: {describe(message)}")
                lines.append(f"{speaker} {message.hex()}")
with open(output, "w") as out:
    out.write("\n".join(lines) + "\n")
print(f"wrote {output}")
PYTHON
