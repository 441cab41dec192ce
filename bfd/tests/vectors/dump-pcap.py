# Prints every BFD control packet of a pcap of Ethernet/IPv4/UDP frames (capture-frr.sh):
# seconds, source, TTL, hex of the UDP payload, and its fields.
import struct,sys
d=open(sys.argv[1],'rb').read()
o=24; t0=None
while o<len(d):
    ts,us,incl,orig=struct.unpack('<IIII',d[o:o+16]); o+=16
    f=d[o:o+incl]; o+=incl
    ip=f[14:]; ihl=(ip[0]&15)*4; ttl=ip[8]
    src='.'.join(map(str,ip[12:16])); udp=ip[ihl:]; pl=udp[8:]
    t=ts+us/1e6; t0=t0 or t
    b0,b1,mult,ln=pl[0],pl[1],pl[2],pl[3]
    my,your,tx,rx,echo=struct.unpack('>IIIII',pl[4:24])
    st=['AdminDown','Down','Init','Up'][b1>>6]
    fl=''.join(c for c,bit in zip('PFCADM',[32,16,8,4,2,1]) if b1&bit)
    print(f"{t-t0:7.3f} {src} ttl{ttl} {pl.hex()} {st} diag{b0&31} {fl} mult{mult} len{ln} my{my} your{your} tx{tx} rx{rx} echo{echo}")
