#!/usr/bin/env bash
# Captures BFD control packets between two FRR bfdd instances (Debian frr) in the
# namespaces bfdcapa/bfdcapb into /tmp/bfdcap/frr-bfdd.pcap (run as root; it deletes
# what it made on exit). The vectors of frr-bfdd.txt and frr-bfdd-a.txt came from one
# run, listed with: python3 dump-pcap.py /tmp/bfdcap/frr-bfdd.pcap
set -u
A=bfdcapa; B=bfdcapb; D=/tmp/bfdcap
cleanup() {
  for n in $A $B; do
    for p in $D/$n/*.pid; do [ -f "$p" ] && kill "$(cat $p)" 2>/dev/null; done
  done
  [ -n "${TCPDUMP:-}" ] && kill $TCPDUMP 2>/dev/null
  sleep 1
  ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null
}
trap cleanup EXIT
ip netns add $A; ip netns add $B
ip link add bfdcapva netns $A type veth peer name bfdcapvb netns $B
ip -n $A addr add 10.251.0.1/30 dev bfdcapva; ip -n $B addr add 10.251.0.2/30 dev bfdcapvb
ip -n $A link set bfdcapva up; ip -n $B link set bfdcapvb up; ip -n $A link set lo up; ip -n $B link set lo up
start() { # ns local peer ifname
  local n=$1 dir=$D/$1
  mkdir -p $dir; chown frr:frr $dir; chmod 755 $D
  cat > $dir/frr.conf <<CONF
bfd
 peer $3 local-address $2 interface $4
  transmit-interval 300
  receive-interval 300
  detect-multiplier 3
 !
!
CONF
  chmod 644 $dir/frr.conf
  for d in zebra bfdd; do
    ip netns exec $n /usr/lib/frr/$d -d -z $dir/zserv.api --vty_socket $dir -i $dir/$d.pid -f $dir/frr.conf --log file:$dir/$d.log
    sleep 1
  done
}
ip netns exec $A tcpdump -i bfdcapva -w $D/frr-bfdd.pcap -U udp port 3784 2>$D/tcpdump.err &
TCPDUMP=$!
sleep 1
start $A 10.251.0.1 10.251.0.2 bfdcapva
sleep 2
start $B 10.251.0.2 10.251.0.1 bfdcapvb
sleep 5
ip netns exec $A vtysh --vty_socket $D/$A -c 'show bfd peers json' > $D/peers-up.json
# change of intervals mid-session: Poll/Final
ip netns exec $A vtysh --vty_socket $D/$A -c 'configure terminal' -c 'bfd' -c 'peer 10.251.0.2 local-address 10.251.0.1 interface bfdcapva' -c 'transmit-interval 500'
sleep 3
# administratively down on B, then up again
ip netns exec $B vtysh --vty_socket $D/$B -c 'configure terminal' -c 'bfd' -c 'peer 10.251.0.1 local-address 10.251.0.2 interface bfdcapvb' -c 'shutdown'
sleep 3
ip netns exec $B vtysh --vty_socket $D/$B -c 'configure terminal' -c 'bfd' -c 'peer 10.251.0.1 local-address 10.251.0.2 interface bfdcapvb' -c 'no shutdown'
sleep 4
# detection time expired on A: kill B's bfdd
kill "$(cat $D/$B/bfdd.pid)"
sleep 4
ip netns exec $A vtysh --vty_socket $D/$A -c 'show bfd peers json' > $D/peers-down.json
