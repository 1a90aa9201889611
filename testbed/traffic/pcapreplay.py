"""Open-loop replay of a pcap between the testbed's hosts (packet-level experiments).

Every IPv4 address seen in the capture is mapped to a testbed host (in order of first
appearance onto the given hosts, or by an explicit map); packets are rewritten (IP and
Ethernet addresses, checksums recomputed) and sent from their new source host at their
original relative times (open loop: nothing waits for replies). Each packet carries its
index in the IP ID field; a receiver matches it by that, its ends and a CRC of its
transport bytes (other traffic between the same hosts reuses IP IDs). Receivers record
what arrives.

Inside a host namespace the sender and the receiver run as::

    python -m testbed.traffic.pcapreplay send FILE.pcap --map MAP.json --host NAME --out SENT.csv
    python -m testbed.traffic.pcapreplay recv --host NAME --out RECV.csv

Both print ``ready`` on standard output once set up (capture parsed, frames built,
socket bound). The sender then reads its start time (Unix seconds) from standard input;
the receiver records until it reads ``stop`` (or end of file). The start time is chosen
only after every process is ready, so a slow start (importing scapy, reading a large
capture) cannot make a sender late and compress the original timing into a burst.

:func:`replay` drives both for a running :class:`~testbed.emulation.Emulation`, then
returns one row per packet: due and sent time, received time (NaN = lost), one-way delay.
"""

from __future__ import annotations

import argparse
import json
import logging
import select
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Sequence

import pandas as pd

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
SO_TIMESTAMPNS = 35


def address_map(pcap: Path, hosts: Sequence[str]) -> dict[str, str]:
    """pcap IPv4 address -> host name, by first appearance, cycling over ``hosts``."""
    from scapy.all import IP, PcapReader
    out: dict[str, str] = {}
    with PcapReader(str(pcap)) as reader:
        for pkt in reader:
            if IP in pkt:
                for addr in (pkt[IP].src, pkt[IP].dst):
                    if addr not in out:
                        out[addr] = hosts[len(out) % len(hosts)]
    if not out:
        raise ValueError(f"{pcap}: no IPv4 packets to replay")
    return out


class _ScapyWarnings(logging.Handler):
    """Collects what scapy's runtime logger says while reading one file, instead of letting it
    print a bare "WARNING: Pcap: packet has been truncated" that names no file."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> "_ScapyWarnings":
        self._logger = logging.getLogger("scapy.runtime")
        self._propagate = self._logger.propagate
        self._saved = list(self._logger.handlers)
        self._logger.handlers = [self]
        self._logger.propagate = False
        return self

    def __exit__(self, *exc) -> None:
        self._logger.handlers = self._saved
        self._logger.propagate = self._propagate


def capture_summary(pcap: Path) -> tuple[int, float, int]:
    """(IPv4 packets, span from the first to the last of them [s], their frame bytes).

    Raises ValueError naming the file if it cannot be read as a pcap/pcapng capture,
    is truncated (its last packet is cut short), or holds no IPv4 packets.
    """
    from scapy.all import IP, PcapReader
    from scapy.error import Scapy_Exception
    n, size, stamps, records = 0, 0, [], 0
    try:
        with _ScapyWarnings() as said, PcapReader(str(pcap)) as reader:
            for pkt in reader:
                records += 1
                if said.messages:
                    break
                if IP in pkt:
                    n += 1
                    size += len(pkt)
                    stamps.append(float(pkt.time))
    except (Scapy_Exception, OSError, EOFError, struct.error) as err:
        raise ValueError(f"{pcap}: not a readable pcap capture ({err})") from None
    if said.messages:
        raise ValueError(f"{pcap}: packet {records} is cut short ({said.messages[0]}): the file is truncated; "
                         f"copy it again or cut it at a packet boundary (e.g. editcap -r)")
    if not n:
        raise ValueError(f"{pcap}: no IPv4 packets to replay")
    return n, max(stamps) - min(stamps), size


def l4_crc(frame: bytes) -> int:
    """CRC-32 of an Ethernet/IPv4 frame's IP payload (header length from IHL): what a
    replayed packet keeps end to end, where the TTL and IP checksum may change."""
    total = int.from_bytes(frame[16:18], "big")             # IP total length: no link padding
    return zlib.crc32(frame[14 + (frame[14] & 0x0F) * 4:14 + total])


def _send(args) -> int:
    from scapy.all import IP, PcapReader, Ether
    info = json.loads(Path(args.map).read_text())      # {"addr": {pcap ip: host}, "hosts": {host: [ip, mac]}}
    me = args.host
    frames, times = [], []
    t_first = None
    with PcapReader(str(args.pcap)) as reader:
        for index, pkt in enumerate(reader):
            if IP not in pkt:
                continue
            t_first = float(pkt.time) if t_first is None else t_first
            src_host = info["addr"][pkt[IP].src]
            dst_host = info["addr"][pkt[IP].dst]
            if src_host != me or dst_host == me:
                continue
            ip = pkt[IP].copy()
            ip.src, ip.dst = info["hosts"][src_host][0], info["hosts"][dst_host][0]
            ip.id = index & 0xFFFF
            del ip.chksum
            if hasattr(ip.payload, "chksum"):
                del ip.payload.chksum
            frame = Ether(src=info["hosts"][src_host][1], dst=info["hosts"][dst_host][1]) / ip
            frames.append((index, dst_host, bytes(frame)))
            times.append((float(pkt.time) - t_first) * args.dilation)     # wall s: spacing x D
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind(("eth0", 0))
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    rows = []
    for (index, dst, frame), dt in zip(frames, times):
        due = start_at + dt
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        t = time.time()
        sock.send(frame)
        rows.append((index, me, dst, len(frame), due, t, l4_crc(frame)))
    pd.DataFrame(rows, columns=["index", "src", "dst", "size_bytes", "t_due", "t_sent", "crc"]).to_csv(args.out,
                                                                                                      index=False)
    return 0


def _record_pending(sock: socket.socket, out) -> None:
    """Writes one ``index,src_ip,t_recv,crc`` line per frame waiting on ``sock`` (non-blocking)."""
    while True:
        try:
            data, anc, _flags, addr = sock.recvmsg(65535, 64)
        except BlockingIOError:
            return
        if addr[2] == socket.PACKET_OUTGOING or len(data) < 34:
            continue
        t_recv = time.time()
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", value[:16])
                t_recv = sec + nsec * 1e-9
        ident = int.from_bytes(data[18:20], "big")
        out.write(f"{ident},{socket.inet_ntoa(data[26:30])},{t_recv:.9f},{l4_crc(data)}\n")


def _recv(args) -> int:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sock.bind(("eth0", 0))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)   # kernel receive time, not read time
    sock.setblocking(False)
    print("ready", flush=True)
    with open(args.out + ".tmp", "w") as f:
        f.write("index,src_ip,t_recv,crc\n")
        while True:
            readable, _, _ = select.select([sock, sys.stdin], [], [])
            _record_pending(sock, f)
            if sys.stdin in readable:      # "stop" or end of file: what arrived is recorded
                break
    Path(args.out + ".tmp").replace(args.out)
    return 0


def _await_ready(procs, timeout_s: float) -> None:
    """Waits until every process printed ``ready``; raises RuntimeError naming one that did not."""
    deadline = time.monotonic() + timeout_s
    for p in procs:
        ready, _, _ = select.select([p.popen.stdout], [], [], max(0.0, deadline - time.monotonic()))
        line = p.popen.stdout.readline().strip() if ready else ""
        if line != "ready":
            raise RuntimeError(f"{p.role} in {p.netns} not ready after {timeout_s:g} s "
                               f"(exit status {p.popen.poll()}, printed {line!r})")


def replay(emu, pcap: Path, hosts: Sequence[str], workdir: Path, lead_s: float = 0.2,
           tail_s: float = 2.0, ready_timeout_s: float = 60.0, start_at_unix: float | None = None,
           dilation: float = 1.0) -> pd.DataFrame:
    """Replays ``pcap`` among ``hosts`` of a running emulation; one row per packet sent.

    Receivers and senders start first and report ready; the first packet is due ``lead_s``
    after the last of them did, or at ``start_at_unix`` if that is later; receivers stop
    ``tail_s`` after the last sender finished.
    Columns: ``index`` (packet number in the capture), ``src``, ``dst`` (host names),
    ``size_bytes``, ``t_due``/``t_sent`` (Unix s: original timing, actual send),
    ``t_recv`` (Unix s, kernel receive time; NaN = lost), ``one_way_s`` = t_recv - t_sent.
    With ``dilation`` D the capture's spacing is stretched by D (all columns stay wall time).
    """
    from testbed.system.tracking import Spawned
    workdir.mkdir(parents=True, exist_ok=True)
    amap = address_map(pcap, hosts)
    used = sorted(set(amap.values()))
    info = {"addr": amap, "hosts": {h: [emu.host(h).ip, emu.host(h).mac] for h in used}}
    (workdir / "map.json").write_text(json.dumps(info, indent=1))
    span_s = capture_summary(pcap)[1] * dilation    # senders time IPv4 packets from the first of them
    pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    module = [sys.executable, "-m", "testbed.traffic.pcapreplay"]
    receivers, senders = [], []
    try:
        for h in used:
            receivers.append(Spawned(module + ["recv", "--host", h, "--out", str(workdir / f"recv-{h}.csv")],
                                     role="pcap-recv", netns=emu.host(h).netns, **pipes))
        for h in used:
            senders.append(Spawned(module + ["send", str(pcap), "--map", str(workdir / "map.json"), "--host", h,
                                             "--out", str(workdir / f"sent-{h}.csv"), "--dilation", f"{dilation!r}"],
                                   role="pcap-send", netns=emu.host(h).netns, **pipes))
        _await_ready(receivers + senders, ready_timeout_s)
        start_at = max(time.time() + lead_s, start_at_unix or 0.0)
        for p in senders:
            p.popen.stdin.write(f"{start_at:.6f}\n")
            p.popen.stdin.close()
        for p in senders:
            if p.popen.wait(timeout=max(0.0, start_at - time.time()) + span_s + 60) != 0:
                raise RuntimeError(f"pcap sender in {p.netns} exited with {p.popen.returncode}")
        time.sleep(tail_s)
        for p in receivers:
            p.popen.stdin.write("stop\n")
            p.popen.stdin.close()
        for p in receivers:
            if p.popen.wait(timeout=30) != 0:
                raise RuntimeError(f"pcap receiver in {p.netns} exited with {p.popen.returncode}")
    finally:
        for p in receivers + senders:
            p.stop()
    sent = pd.concat([pd.read_csv(workdir / f"sent-{h}.csv") for h in used], ignore_index=True)
    recv = pd.concat([pd.read_csv(workdir / f"recv-{h}.csv").assign(dst=h) for h in used], ignore_index=True)
    ip_of = {h: v[0] for h, v in info["hosts"].items()}
    sent["src_ip"] = sent["src"].map(ip_of)
    sent["id"] = sent["index"] & 0xFFFF
    # Other traffic between the same hosts (probes, iperf3, agents) reuses IP IDs: a
    # replayed packet is the one whose ID, ends and transport bytes all match.
    keys = ["id", "src_ip", "dst", "crc"]
    recv = recv.rename(columns={"index": "id"}).drop_duplicates(keys)
    out = sent.merge(recv, on=keys, how="left")
    out["one_way_s"] = out["t_recv"] - out["t_sent"]
    return out[["index", "src", "dst", "size_bytes", "t_due", "t_sent", "t_recv", "one_way_s"]].sort_values("index")


class ReplayThreads:
    """Replays an experiment's captures (``spec.pcaps``) in threads while the clock runs.

    Capture ``c`` starts at ``start_unix + c.start_s / speedup`` (its orbital start
    time); packets keep the capture's own spacing, times ``dilation`` (``speedup``: orbital
    seconds per wall second).
    """

    def __init__(self, emu, pcaps, workdir: Path, start_unix: float, speedup: float, dilation: float = 1.0):
        import threading
        self.results: dict[str, pd.DataFrame] = {}
        self.errors: dict[str, BaseException] = {}
        self.threads = []
        for c in pcaps:
            at = start_unix + c.start_s / speedup
            th = threading.Thread(target=self._run, args=(emu, c, workdir / c.label, at, dilation), daemon=True,
                                  name=f"pcap-{c.label}")
            th.start()
            self.threads.append(th)

    def _run(self, emu, c, workdir: Path, at: float, dilation: float) -> None:
        try:
            self.results[c.label] = replay(emu, c.file, c.hosts, workdir, start_at_unix=at, dilation=dilation)
        except BaseException as err:  # noqa: BLE001 - reported by collect()
            self.errors[c.label] = err

    def collect(self, timeout_s: float = 120.0) -> dict[str, pd.DataFrame]:
        """Waits for every replay; raises RuntimeError naming the first that failed."""
        for th in self.threads:
            th.join(timeout_s)
        stuck = [th.name for th in self.threads if th.is_alive()]
        if stuck:
            raise RuntimeError(f"{', '.join(stuck)} still running {timeout_s:g} s after the schedule ended")
        for label, err in self.errors.items():
            raise RuntimeError(f"pcap {label}: {err}")
        return self.results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testbed.traffic.pcapreplay")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("pcap", type=Path)
    s.add_argument("--map", required=True)
    s.add_argument("--host", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--dilation", type=float, default=1.0, help="time dilation D: packet spacing x D")
    r = sub.add_parser("recv")
    r.add_argument("--host", required=True)
    r.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    return _send(args) if args.cmd == "send" else _recv(args)


if __name__ == "__main__":
    sys.exit(main())
