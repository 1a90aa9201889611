"""The guest keeps every thread's vector registers (the UML lane runs on CPUs whose XSAVE
area is larger than Debian's UML kernel knows; scripts/uml-xstate.c widens its FPU
restores). Four threads of one process each hold their own value in a vector register
across thousands of yields to each other; any value seen changed is a corrupted restore.
It runs in both lanes: on the host it checks the check."""

from __future__ import annotations

import subprocess

import pytest

pytestmark = [pytest.mark.emulation, pytest.mark.uml]

PROGRAM = r"""
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
static long corrupted, checks;
static void *run(void *arg) {
    long id = (long)arg;
    for (long it = 0; it < 100000; it++) {
        double v = id * 1e6 + it;
#ifdef __AVX512F__
        __m512d held = _mm512_set1_pd(v), back;      /* zmm20: beyond AVX's 16 registers */
        __asm__ volatile("vmovapd %0, %%zmm20" :: "v"(held) : "xmm20");
        if (it % 16 == 0) sched_yield();
        __asm__ volatile("vmovapd %%zmm20, %0" : "=v"(back));
        double out[8]; _mm512_storeu_pd(out, back); int n = 8;
#else
        __m256d held = _mm256_set1_pd(v), back;       /* ymm3: AVX's upper halves */
        __asm__ volatile("vmovapd %0, %%ymm3" :: "x"(held) : "xmm3");
        if (it % 16 == 0) sched_yield();
        __asm__ volatile("vmovapd %%ymm3, %0" : "=x"(back));
        double out[4]; _mm256_storeu_pd(out, back); int n = 4;
#endif
        for (int i = 0; i < n; i++) if (out[i] != v) { __atomic_fetch_add(&corrupted, 1, __ATOMIC_RELAXED); break; }
        __atomic_fetch_add(&checks, 1, __ATOMIC_RELAXED);   /* threads run at once on the host */
    }
    return 0;
}
int main(void) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], 0, run, (void *)i);
    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
    printf("%ld %ld\n", checks, corrupted);
    return 0;
}
"""


def _cpu_flags() -> set[str]:
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_threads_keep_their_vector_registers_across_switches(tmp_path):
    flags = _cpu_flags()
    if "avx" not in flags:
        pytest.skip("this CPU has no AVX: nothing beyond the FXSAVE image to keep")
    src, exe = tmp_path / "fpu.c", tmp_path / "fpu"
    src.write_text(PROGRAM)
    arch = "-mavx512f" if "avx512f" in flags else "-mavx"
    subprocess.run(["gcc", "-O1", arch, "-pthread", "-o", str(exe), str(src)], check=True, timeout=120)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True, timeout=300).stdout
    checks, corrupted = map(int, out.split())
    assert checks == 400_000 and corrupted == 0, (arch, out)
