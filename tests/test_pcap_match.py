"""How pcap replay recognises its own packets among other traffic (pure)."""

from scapy.all import IP, UDP, Ether, Raw

from testbed.traffic.pcapreplay import l4_crc


def test_packets_with_the_same_ip_id_are_told_apart_by_their_transport_bytes():
    replayed = bytes(Ether() / IP(src="10.100.0.1", dst="10.100.0.3", id=7) / UDP(sport=4000, dport=5000) / Raw(b"x" * 20))
    other = bytes(Ether() / IP(src="10.100.0.1", dst="10.100.0.3", id=7) / UDP(sport=5201, dport=5201) / Raw(b"y" * 20))
    assert l4_crc(replayed) != l4_crc(other)
    # What the receiver sees: TTL decremented (IP checksum changes) and link padding added.
    seen = bytearray(replayed)
    seen[22] -= 1
    assert l4_crc(bytes(seen) + bytes(12)) == l4_crc(replayed)
