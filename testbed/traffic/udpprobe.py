"""The probe program run inside one host namespace: UDP sender for its pairs, reflector for its peers.

One process per host and one UDP socket (``--bind IP --port P``). It sends ``--count``
probes to every ``--target NAME=IP`` at ``--rate-hz`` each, the targets' probes spread
evenly over each period, and it reflects every probe that peers send to it. Run as::

    python PATH/udpprobe.py --bind IP --port P --session N --rate-hz R --count C \\
        --target h3=10.0.0.4 ... --out PREFIX

It uses the standard library only and is started by its file path, not ``python -m``:
it starts in 0.06 s, where importing ``testbed.traffic`` (pandas) takes 1.1-1.3 s and
0.4 s of CPU per process, spent by every host at once beside the running emulation.

Handshake (as :mod:`testbed.traffic.pcapreplay`): it prints ``ready`` once its socket is
bound, reads the start time (Unix ns, one line) from standard input, sends from then on,
and keeps reflecting until it reads ``stop`` (or end of file, or SIGTERM); then it writes
``PREFIX.sent.csv`` and ``PREFIX.replies.csv`` and exits 0. Bad arguments: one line, exit 2.

Timestamps, all CLOCK_REALTIME in integer ns (sender and reflector share the machine's clock):

- ``t_send_ns`` (T1): the kernel's software TX stamp of the probe (``SO_TIMESTAMPING``,
  taken as the host's veth hands the frame on), read back from the socket's error queue;
  where none arrives, ``clock_gettime`` right before ``sendmsg`` (``tx_kernel`` = 0);
- ``t_reflect_rx_ns`` (T2): the reflector's kernel receive stamp (``SO_TIMESTAMPNS``);
- ``t_reflect_tx_ns`` (T3): the reflector's ``clock_gettime`` right before it sends the reply;
- ``t_recv_ns`` (T4): the sender's kernel receive stamp of the reply (``SO_TIMESTAMPNS``).

Wire format (network order, ``HEADER``): magic ``LMPB``, kind (1 probe, 2 reply), version,
target index, session, sequence number, T1 (user-space send time), T2, T3; padded to
``--size-bytes``. The session number keeps a previous mesh's late packets out.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import struct
import sys
import time

MAGIC = b"LMPB"
VERSION = 1
PROBE, REPLY = 1, 2
HEADER = struct.Struct("!4sBBHIIqqq")          # 40 bytes
SO_TIMESTAMPNS = 35                            # linux/asm-generic/socket.h
SO_TIMESTAMPING = 37
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
TX_STAMP_CMSG = [(socket.SOL_SOCKET, SO_TIMESTAMPING, struct.pack("I", SOF_TIMESTAMPING_TX_SOFTWARE))]


class Prober:
    """Runtime state of one host's sender and reflector (one socket)."""

    def __init__(self, bind_ip: str, port: int, session: int, targets: list[tuple[str, str]], size_bytes: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((bind_ip, port))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)                 # T2, T4
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_SOFTWARE)  # report T1
        self.sock.setblocking(False)
        self.port = port
        self.session = session
        self.targets = targets
        self.pad = b"\0" * max(0, size_bytes - HEADER.size)
        self.sent: list[tuple[int, int, int]] = []                   # (target, seq, t_user_ns)
        self.tx_ns: dict[tuple[int, int], int] = {}                   # (target, seq) -> kernel TX stamp
        self.replies: list[tuple[int, int, int, int, int]] = []       # (target, seq, T2, T3, T4) in arrival order
        self.reflected = 0
        self.send_errors = 0

    def send(self, target: int, seq: int) -> None:
        t_ns = time.time_ns()
        msg = HEADER.pack(MAGIC, PROBE, VERSION, target, self.session, seq, t_ns, 0, 0) + self.pad
        try:
            self.sock.sendmsg([msg], TX_STAMP_CMSG, 0, (self.targets[target][1], self.port))
        except OSError:                 # e.g. no route: the probe counts as sent and lost
            self.send_errors += 1
        self.sent.append((target, seq, t_ns))

    def drain(self) -> None:
        """Reads every waiting datagram: reflects probes, records replies."""
        while True:
            try:
                data, anc, _flags, addr = self.sock.recvmsg(2048, 256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:             # an ICMP error reported on the socket: nothing to read
                continue
            if len(data) < HEADER.size:
                continue
            magic, kind, version, target, session, seq, t1, _t2, t3 = HEADER.unpack_from(data)
            if magic != MAGIC or version != VERSION or session != self.session:
                continue
            t_rx = _stamp(anc, SO_TIMESTAMPNS)
            if kind == PROBE:
                t3_ns = time.time_ns()
                reply = HEADER.pack(MAGIC, REPLY, VERSION, target, session, seq, t1, t_rx, t3_ns) + data[HEADER.size:]
                try:
                    self.sock.sendto(reply, addr)
                    self.reflected += 1
                except OSError:
                    pass
            elif kind == REPLY and target < len(self.targets):
                self.replies.append((target, seq, _t2, t3, t_rx))

    def drain_errqueue(self) -> None:
        """Reads the kernel's TX stamps of sent probes (the frame comes back with them)."""
        while True:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(2048, 512, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            at = data.find(MAGIC)       # the looped frame starts at its Ethernet header
            stamp = _stamp(anc, SO_TIMESTAMPING)
            if at < 0 or len(data) < at + HEADER.size or stamp is None:
                continue
            _m, kind, _v, target, session, seq, *_ = HEADER.unpack_from(data, at)
            if kind == PROBE and session == self.session:
                self.tx_ns[(target, seq)] = stamp

    def write(self, prefix: str) -> None:
        with open(prefix + ".sent.csv.tmp", "w") as f:
            f.write("dst,seq,t_send_ns,tx_kernel\n")
            for target, seq, t_user in self.sent:
                t_tx = self.tx_ns.get((target, seq))
                f.write(f"{self.targets[target][0]},{seq},{t_tx or t_user},{int(t_tx is not None)}\n")
        with open(prefix + ".replies.csv.tmp", "w") as f:
            f.write("dst,seq,t_reflect_rx_ns,t_reflect_tx_ns,t_recv_ns\n")
            for target, seq, t2, t3, t4 in self.replies:
                f.write(f"{self.targets[target][0]},{seq},{t2},{t3},{t4}\n")
        os.replace(prefix + ".sent.csv.tmp", prefix + ".sent.csv")
        os.replace(prefix + ".replies.csv.tmp", prefix + ".replies.csv")


def _stamp(anc, kind: int) -> int | None:
    """Unix ns of the first timestamp of ``kind`` in ancillary data (SCM_TIMESTAMPNS: a timespec;
    SCM_TIMESTAMPING: three, the first is the software stamp)."""
    for level, k, value in anc:
        if level == socket.SOL_SOCKET and k == kind and len(value) >= 16:
            sec, nsec = struct.unpack_from("qq", value)
            if sec or nsec:
                return sec * 1_000_000_000 + nsec
    return None


class _Stop(Exception):
    """SIGTERM: stop sending, write what was recorded."""


def _raise_stop(*_):
    raise _Stop


def _read_line(fd: int) -> str:
    """One line from ``fd`` without read-ahead (what follows it is read by the poll loop)."""
    out = b""
    while not out.endswith(b"\n"):
        b = os.read(fd, 1)
        if not b:
            break
        out += b
    return out.decode().strip()


def run(p: Prober, rate_hz: float, count: int, prefix: str) -> int:
    """Handshake, then the send schedule and reflection until ``stop``; writes the records."""
    signal.signal(signal.SIGTERM, _raise_stop)
    poller = select.poll()
    poller.register(p.sock, select.POLLIN)
    poller.register(0, select.POLLIN)
    print("ready", flush=True)
    try:
        line = _read_line(0)
        start_ns = int(line) if line and line != "stop" else None
        n_events = count * len(p.targets) if start_ns is not None else 0
        spacing_ns = 1e9 / (rate_hz * len(p.targets)) if p.targets else 0.0   # one probe per slot
        i = 0
        stopped = start_ns is None
        while not stopped:
            timeout_ms = None
            if i < n_events:
                due_ns = start_ns + int(i * spacing_ns)
                now_ns = time.time_ns()
                if now_ns >= due_ns:
                    p.send(i % len(p.targets), i // len(p.targets))
                    i += 1
                    continue
                timeout_ms = (due_ns - now_ns) / 1e6
            for fd, ev in poller.poll(timeout_ms):
                if fd == 0:
                    data = os.read(0, 4096)
                    stopped = not data or b"stop" in data
                    continue
                if ev & select.POLLERR:
                    p.drain_errqueue()
                if ev & select.POLLIN:
                    p.drain()
    except _Stop:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    p.drain_errqueue()
    p.drain()
    p.write(prefix)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="udpprobe.py", description=__doc__.splitlines()[0])
    ap.add_argument("--bind", required=True, help="this host's IPv4 address")
    ap.add_argument("--port", type=int, required=True, help="UDP port of every probe process")
    ap.add_argument("--session", type=int, required=True, help="number shared by one mesh's processes")
    ap.add_argument("--rate-hz", type=float, required=True, help="probes per second to each target")
    ap.add_argument("--count", type=int, required=True, help="probes to each target")
    ap.add_argument("--target", action="append", default=[], help="NAME=IP of a host to probe (repeatable)")
    ap.add_argument("--size-bytes", type=int, default=56, help="UDP payload per probe (>= 40)")
    ap.add_argument("--out", required=True, help="prefix of the two CSV files written at the end")
    args = ap.parse_args(argv)
    targets = []
    for t in args.target:
        name, sep, ip = t.partition("=")
        if not sep or not name or not ip:
            print(f"udpprobe: --target {t!r}: expected NAME=IP", file=sys.stderr)
            return 2
        targets.append((name, ip))
    if not args.rate_hz > 0 or args.count < 0 or not 0 < args.port < 65536 or len(targets) > 0xFFFF:
        print(f"udpprobe: bad --rate-hz {args.rate_hz:g}, --count {args.count}, --port {args.port} "
              f"or {len(targets)} targets", file=sys.stderr)
        return 2
    try:
        p = Prober(args.bind, args.port, args.session & 0xFFFFFFFF, targets, args.size_bytes)
    except OSError as err:
        print(f"udpprobe: cannot bind {args.bind}:{args.port}: {err.strerror}", file=sys.stderr)
        return 2
    return run(p, args.rate_hz, args.count, args.out)


if __name__ == "__main__":
    sys.exit(main())
