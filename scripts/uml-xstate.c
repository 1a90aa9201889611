/*
 * uml-xstate.so: lets Debian's User-Mode Linux 6.1 kernel run on hosts whose XSAVE area is
 * larger than the one it was built for (here: a Xeon with AMX). scripts/uml.sh loads it
 * into linux.uml with LD_PRELOAD; nothing inside the guest sees it.
 *
 * Why: the UML kernel saves and restores each guest thread's FPU state with
 * ptrace(PTRACE_GETREGSET / PTRACE_SETREGSET, NT_X86_XSTATE) and a buffer of the size of
 * `struct _xstate` when it was built: 2,696 bytes (x87, SSE, AVX, AVX-512, PKRU). The host
 * accepts a SETREGSET only with its own full size (11,008 bytes with AMX's tile state) and
 * answers EFAULT otherwise, so the guest's init dies at its first return to user space
 * ("userspace - ptrace set fp regs failed, errno = 14", then "Attempted to kill init!
 * exitcode=0x0000000b"). A GETREGSET with the short buffer works (it is truncated).
 *
 * What: a SETREGSET with a buffer shorter than the host's reads the thread's full state,
 * lays UML's bytes over every component that fits wholly in UML's buffer (with their
 * xstate_bv bits) and writes the full size back. The components left as they were are the
 * ones UML cannot hold (AMX tiles), which guest programs cannot use anyway: enabling them
 * takes arch_prctl(ARCH_REQ_XCOMP_PERM), which the 6.1 UML kernel does not offer. Every
 * other call goes to the host unchanged.
 *
 * Build: gcc -O2 -Wall -shared -fPIC -o uml-xstate.so uml-xstate.c -ldl (scripts/setup.sh)
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#define NT_X86_XSTATE 0x202
#define LEGACY_BYTES 512          /* x87 + SSE (the FXSAVE image) */
#define XSTATE_BV_OFFSET 512      /* the XSAVE header follows it: xstate_bv, xcomp_bv, ... */
#define HEADER_BYTES 64
#define N_USER_COMPONENTS 32      /* xstate_bv bits CPUID leaf 0xd describes for user state */

typedef long (*ptrace_fn)(int, pid_t, void *, void *);

static ptrace_fn real_ptrace;
static size_t host_bytes;                     /* the host's full XSAVE size for ptrace */
static uint32_t comp_offset[N_USER_COMPONENTS], comp_size[N_USER_COMPONENTS];

static long host_ptrace(int req, pid_t pid, void *addr, void *data)
{
    if (!real_ptrace)
        real_ptrace = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
    return real_ptrace(req, pid, addr, data);
}

/* The host's size (from a GETREGSET with a buffer large enough) and the standard-format
 * offset and size of each component (CPUID leaf 0xd); 0 if it cannot be read. */
static size_t host_size(pid_t pid)
{
    if (host_bytes)
        return host_bytes;
    static unsigned char probe[1 << 16];
    struct iovec iov = { probe, sizeof probe };
    if (host_ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) != 0)
        return 0;
    for (unsigned i = 2; i < N_USER_COMPONENTS; i++) {
        unsigned size, offset, ecx, edx;
        __cpuid_count(0xd, i, size, offset, ecx, edx);
        comp_size[i] = size;
        comp_offset[i] = offset;
    }
    host_bytes = iov.iov_len;
    return host_bytes;
}

static long set_widened(pid_t pid, const struct iovec *iov)
{
    unsigned char *full = malloc(host_bytes);
    if (!full) {
        errno = ENOMEM;
        return -1;
    }
    struct iovec wide = { full, host_bytes };
    long r = host_ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &wide);
    if (r == 0) {
        const unsigned char *mine = iov->iov_base;
        uint64_t bv, bv_mine;
        memcpy(&bv, full + XSTATE_BV_OFFSET, sizeof bv);
        memcpy(&bv_mine, mine + XSTATE_BV_OFFSET, sizeof bv_mine);
        memcpy(full, mine, LEGACY_BYTES);
        bv = (bv & ~3ULL) | (bv_mine & 3ULL);
        for (unsigned i = 2; i < N_USER_COMPONENTS; i++) {
            if (!comp_size[i] || comp_offset[i] + comp_size[i] > iov->iov_len)
                continue;                                   /* not in UML's buffer: as it was */
            memcpy(full + comp_offset[i], mine + comp_offset[i], comp_size[i]);
            bv = (bv & ~(1ULL << i)) | (bv_mine & (1ULL << i));
        }
        memcpy(full + XSTATE_BV_OFFSET, &bv, sizeof bv);
        wide.iov_len = host_bytes;
        r = host_ptrace(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, &wide);
    }
    int saved = errno;
    free(full);
    errno = saved;
    return r;
}

long ptrace(enum __ptrace_request request, ...)
{
    va_list ap;
    va_start(ap, request);
    pid_t pid = va_arg(ap, pid_t);
    void *addr = va_arg(ap, void *);
    void *data = va_arg(ap, void *);
    va_end(ap);
    const struct iovec *iov = data;
    if ((int)request == PTRACE_SETREGSET && (uintptr_t)addr == NT_X86_XSTATE && iov &&
        iov->iov_len >= LEGACY_BYTES + HEADER_BYTES) {
        size_t full = host_size(pid);
        if (full && iov->iov_len < full)
            return set_widened(pid, iov);
    }
    return host_ptrace((int)request, pid, addr, data);
}
