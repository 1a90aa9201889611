"""Probe accounting on synthetic records (pure): RTT from four stamps, loss, late replies,
duplicates and reordering; and the probe program's own arguments."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from testbed.traffic.probes import PROGRAM, account

T0 = 1_700_000_000_000_000_000      # Unix ns


def _records(pairs_seqs, rtt_ns=100_000_123, turnaround_ns=250_000, fwd_ns=40_000_007):
    """Sent rows and in-order replies, every probe answered, 50 ms apart."""
    sent, replies = [], []
    for src, dst, n in pairs_seqs:
        for seq in range(n):
            t1 = T0 + seq * 50_000_000
            t2 = t1 + fwd_ns
            t3 = t2 + turnaround_ns
            t4 = t1 + rtt_ns + turnaround_ns
            sent.append((src, dst, seq, t1, 1))
            replies.append((src, dst, seq, t2, t3, t4))
    return (pd.DataFrame(sent, columns=["src", "dst", "seq", "t_send_ns", "tx_kernel"]),
            pd.DataFrame(replies, columns=["src", "dst", "seq", "t_reflect_rx_ns", "t_reflect_tx_ns", "t_recv_ns"]))


def test_rtt_excludes_the_reflector_turnaround_and_keeps_nanoseconds():
    sent, replies = _records([("a", "b", 5)])
    out = account(sent, replies, timeout_s=2.0)
    assert len(out) == 5 and not out["rtt_s"].isna().any()
    # 100_000_123 ns: the 123 ns survive (a float Unix time would not resolve them)
    assert np.all(np.abs(out["rtt_s"] - 0.100000123) < 1e-12)
    assert np.all(np.abs(out["one_way_s"] - 0.040000007) < 1e-12)
    assert np.all(np.abs(out["back_s"] + out["one_way_s"] - out["rtt_s"]) < 1e-12)
    assert np.all(np.abs(out["turnaround_s"] - 250e-6) < 1e-12)
    assert out["t_unix"].iloc[0] == pytest.approx(T0 / 1e9)
    assert not out["reordered"].any()


def test_unanswered_and_late_replies_are_loss_and_duplicates_are_ignored():
    sent, replies = _records([("a", "b", 10), ("b", "a", 4)])
    replies = replies[replies["seq"] != 3]                       # a->b #3 and b->a #3 never answered
    late = (replies["src"] == "a") & (replies["seq"] == 7)
    replies.loc[late, "t_recv_ns"] += 3_000_000_000              # 3 s late: beyond the 2 s timeout
    replies = pd.concat([replies, replies.iloc[[0]]], ignore_index=True)   # a duplicate of a->b #0
    out = account(sent, replies, timeout_s=2.0)
    assert len(out) == 14
    lost = out[out["rtt_s"].isna()]
    assert sorted(zip(lost["src"], lost["seq"])) == [("a", 3), ("a", 7), ("b", 3)]
    assert lost["one_way_s"].isna().all() and not lost["reordered"].any()
    assert out.loc[(out["src"] == "a") & (out["seq"] == 0), "rtt_s"].notna().all()


def test_replies_arriving_out_of_sequence_order_are_counted_per_pair():
    sent, replies = _records([("a", "b", 6), ("a", "c", 3)])
    ab = replies[replies["dst"] == "b"]
    # arrival order a->b: 0 1 4 2 3 5 (2 and 3 overtaken by 4); a->c interleaved, in order
    order = [0, 1, 4, 2, 3, 5]
    arrived = pd.concat([ab.iloc[order[:3]], replies[replies["dst"] == "c"], ab.iloc[order[3:]]])
    out = account(sent, arrived, timeout_s=2.0)
    flagged = out[out["reordered"]]
    assert list(zip(flagged["dst"], flagged["seq"])) == [("b", 2), ("b", 3)]
    assert out["rtt_s"].notna().all()


def test_a_pair_with_nothing_answered_is_all_loss():
    sent, replies = _records([("a", "b", 4)])
    out = account(sent, replies.iloc[0:0], timeout_s=1.0)
    assert len(out) == 4 and out["rtt_s"].isna().all() and not out["reordered"].any()


@pytest.mark.parametrize("args, problem", [
    (["--target", "h3"], "--target 'h3': expected NAME=IP"),
    (["--target", "h3=10.0.0.4", "--rate-hz", "0"], "bad --rate-hz 0"),
])
def test_the_probe_program_rejects_bad_arguments_in_one_line(args, problem):
    base = ["--bind", "127.0.0.1", "--port", "7400", "--session", "1", "--rate-hz", "10", "--count", "1",
            "--out", "/nonexistent/x"]
    r = subprocess.run([sys.executable, str(PROGRAM), *base, *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and problem in r.stderr, r.stderr
