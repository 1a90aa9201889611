/*
 * lmtb-delayline: a userspace propagation-delay line for kernels without sch_netem.
 *
 * One process serves every link of a run. It creates TAP devices (which the testbed
 * attaches to Open vSwitch bridges and shapes with tc), and for each link *pair* of taps
 * (A, B) it holds every frame read from A for the link's current one-way delay before
 * writing it to B, and likewise B -> A. Frame order is kept per direction: a frame is
 * never released before an earlier frame of the same direction, even when the delay
 * decreases. Delays change at once when a `set` command arrives. When the process
 * exits, its taps disappear with it (nothing is left behind).
 *
 * Control protocol: text lines on stdin, answers on stdout.
 *   tap NAME                   create tap NAME (IFF_TAP | IFF_NO_PI); taps are numbered 0, 1, ...
 *   pair A B DELAY_AB_NS DELAY_BA_NS
 *                              link taps A and B; pairs are numbered 0, 1, ... in order
 *   go                         start forwarding; answers "ready TAPS PAIRS"
 *   set P DELAY_AB_NS DELAY_BA_NS   change pair P's one-way delays (takes effect for
 *                              frames read from now on)
 *   sync SEQ                   answers "ok SEQ" once every earlier line is applied
 *   stats                      answers "stats FRAMES_IN FRAMES_OUT BYTES_OUT DROPS QUEUED MAX_QUEUED
 *                              HELD_NS CONFIGURED_NS" (the last two: sums over released frames of
 *                              the time each was held and of the delay configured when it arrived)
 *   delays                     answers "delays D0_AB D0_BA D1_AB D1_BA ..." (ns, every pair in order):
 *                              the delays in force, for the testbed to check against its intent
 *   quit / end of stdin        exit 0
 * Errors in a line answer "error <what>" on stdout and exit 2 (the testbed treats a
 * dead delay line as fatal for the run).
 *
 * Timing: releases are driven by a timerfd armed at the absolute CLOCK_MONOTONIC time
 * of the earliest queued frame (timer slack set to 1 ns), not by epoll's millisecond
 * timeout. The process measures how late its timer wakes (an exponential average of
 * wake-up lateness, capped at MAX_EARLY_NS), arms that much earlier, and spins the
 * last stretch to the exact release time: a frame leaves within microseconds of its due
 * time instead of one scheduler wake-up late.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME 65600
#define MAX_QUEUED 2000000
#define READ_BURST 64
#define MAX_EARLY_NS 300000ull   /* never arm the timer more than 300 us early */
#define MAX_SPIN_NS 400000ull    /* never spin more than 400 us in one wake-up */

typedef struct {
    uint64_t release_ns;
    uint64_t seq;
    int out_fd;
    uint32_t len;
    unsigned char *data;
    uint64_t read_ns;     /* when the frame was read from its tap */
    uint64_t cfg_ns;      /* the link's configured one-way delay at that moment */
} frame_t;

typedef struct {
    int fd;
    int peer_fd;          /* where frames read from this tap go, -1 if unpaired */
    uint64_t delay_ns;    /* one-way delay for frames read from this tap */
    uint64_t last_release_ns;
} tap_t;

static tap_t *taps;
static size_t n_taps, cap_taps;
static size_t n_pairs;
static int *pair_a, *pair_b;
static size_t cap_pairs;

static frame_t *heap;
static size_t heap_len, heap_cap;
static uint64_t next_seq;
static uint64_t st_in, st_out, st_bytes, st_drops, st_max_queued;
static uint64_t st_held_ns, st_cfg_ns;   /* sums over released frames: time held, delay configured */
static uint64_t armed_ns;        /* absolute time the timer was armed for, 0 if disarmed */
static uint64_t early_ns = 50000; /* running estimate of the timer's wake-up lateness */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int frame_before(const frame_t *x, const frame_t *y) {
    if (x->release_ns != y->release_ns) return x->release_ns < y->release_ns;
    return x->seq < y->seq;
}

static void heap_push(frame_t f) {
    if (heap_len == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 4096;
        heap = realloc(heap, heap_cap * sizeof(frame_t));
        if (!heap) { fprintf(stderr, "delayline: out of memory\n"); exit(1); }
    }
    size_t i = heap_len++;
    heap[i] = f;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!frame_before(&heap[i], &heap[p])) break;
        frame_t t = heap[i]; heap[i] = heap[p]; heap[p] = t;
        i = p;
    }
}

static frame_t heap_pop(void) {
    frame_t top = heap[0];
    heap[0] = heap[--heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && frame_before(&heap[l], &heap[m])) m = l;
        if (r < heap_len && frame_before(&heap[r], &heap[m])) m = r;
        if (m == i) break;
        frame_t t = heap[i]; heap[i] = heap[m]; heap[m] = t;
        i = m;
    }
    return top;
}

static void fail(const char *what, const char *arg) {
    printf("error %s %s\n", what, arg ? arg : "");
    fflush(stdout);
    exit(2);
}

static int open_tap(const char *name) {
    struct ifreq ifr;
    if (strlen(name) >= IFNAMSIZ) fail("tap-name-too-long", name);
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) fail("open-/dev/net/tun", strerror(errno));
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    memcpy(ifr.ifr_name, name, strlen(name));
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) fail("TUNSETIFF", name);
    return fd;
}

static void add_tap(const char *name) {
    if (n_taps == cap_taps) {
        cap_taps = cap_taps ? cap_taps * 2 : 256;
        taps = realloc(taps, cap_taps * sizeof(tap_t));
    }
    tap_t *t = &taps[n_taps++];
    t->fd = open_tap(name);
    t->peer_fd = -1;
    t->delay_ns = 0;
    t->last_release_ns = 0;
}

static void add_pair(size_t a, size_t b, uint64_t d_ab, uint64_t d_ba) {
    if (a >= n_taps || b >= n_taps || a == b) fail("bad-pair", NULL);
    if (taps[a].peer_fd >= 0 || taps[b].peer_fd >= 0) fail("tap-already-paired", NULL);
    if (n_pairs == cap_pairs) {
        cap_pairs = cap_pairs ? cap_pairs * 2 : 256;
        pair_a = realloc(pair_a, cap_pairs * sizeof(int));
        pair_b = realloc(pair_b, cap_pairs * sizeof(int));
    }
    pair_a[n_pairs] = (int)a;
    pair_b[n_pairs] = (int)b;
    n_pairs++;
    taps[a].peer_fd = taps[b].fd; taps[a].delay_ns = d_ab;
    taps[b].peer_fd = taps[a].fd; taps[b].delay_ns = d_ba;
}

static void read_tap(tap_t *t, unsigned char *buf) {
    for (int k = 0; k < READ_BURST; k++) {
        ssize_t n = read(t->fd, buf, MAX_FRAME);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != EIO) st_drops++;
            return;
        }
        if (n == 0) return;
        uint64_t now = now_ns();
        st_in++;
        if (t->peer_fd < 0 || heap_len >= MAX_QUEUED) { st_drops++; continue; }
        uint64_t rel = now + t->delay_ns;
        if (rel < t->last_release_ns) rel = t->last_release_ns;  /* keep order per direction */
        t->last_release_ns = rel;
        frame_t f = {rel, next_seq++, t->peer_fd, (uint32_t)n, malloc((size_t)n), now, t->delay_ns};
        if (!f.data) { st_drops++; continue; }
        memcpy(f.data, buf, (size_t)n);
        heap_push(f);
        if (heap_len > st_max_queued) st_max_queued = heap_len;
    }
}

static void release_due(int timer_fired) {
    uint64_t now = now_ns();
    if (timer_fired && armed_ns && now >= armed_ns) {
        /* learn the wake-up lateness: early = 7/8 early + 1/8 observed */
        uint64_t late = now - armed_ns;
        if (late > MAX_EARLY_NS) late = MAX_EARLY_NS;
        early_ns = (7 * early_ns + late) / 8;
    }
    /* Spin to the head's exact due time if it is due within the spin budget. */
    if (heap_len && heap[0].release_ns > now && heap[0].release_ns - now <= early_ns + 20000
        && heap[0].release_ns - now <= MAX_SPIN_NS) {
        while ((now = now_ns()) < heap[0].release_ns) { }
    }
    while (heap_len && heap[0].release_ns <= now) {
        frame_t f = heap_pop();
        ssize_t w = write(f.out_fd, f.data, f.len);
        if (w == (ssize_t)f.len) {
            st_out++; st_bytes += f.len;
            st_held_ns += now - f.read_ns; st_cfg_ns += f.cfg_ns;
        }
        else st_drops++;
        free(f.data);
    }
}

static void arm_timer(int tfd) {
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    armed_ns = 0;
    if (heap_len) {
        uint64_t t = heap[0].release_ns;
        t = t > early_ns ? t - early_ns : 1;
        armed_ns = t;
        its.it_value.tv_sec = (time_t)(t / 1000000000ull);
        its.it_value.tv_nsec = (long)(t % 1000000000ull);
    }
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Handles one control line; returns 0 to go on, 1 on "go", -1 on "quit". */
static int handle_line(char *line, int running) {
    char name[64];
    unsigned long long a, b, d1, d2, seq;
    if (sscanf(line, "tap %63s", name) == 1) {
        if (running) fail("tap-after-go", name);
        add_tap(name);
    } else if (sscanf(line, "pair %llu %llu %llu %llu", &a, &b, &d1, &d2) == 4) {
        if (running) fail("pair-after-go", NULL);
        add_pair((size_t)a, (size_t)b, d1, d2);
    } else if (sscanf(line, "set %llu %llu %llu", &a, &d1, &d2) == 3) {
        if (a >= n_pairs) fail("bad-pair-index", line);
        taps[pair_a[a]].delay_ns = d1;
        taps[pair_b[a]].delay_ns = d2;
    } else if (sscanf(line, "sync %llu", &seq) == 1) {
        printf("ok %llu\n", seq);
        fflush(stdout);
    } else if (strncmp(line, "stats", 5) == 0) {
        printf("stats %llu %llu %llu %llu %llu %llu %llu %llu\n", (unsigned long long)st_in,
               (unsigned long long)st_out, (unsigned long long)st_bytes,
               (unsigned long long)st_drops, (unsigned long long)heap_len,
               (unsigned long long)st_max_queued, (unsigned long long)st_held_ns,
               (unsigned long long)st_cfg_ns);
        fflush(stdout);
    } else if (strncmp(line, "delays", 6) == 0) {
        printf("delays");
        for (size_t i = 0; i < n_pairs; i++)
            printf(" %llu %llu", (unsigned long long)taps[pair_a[i]].delay_ns,
                   (unsigned long long)taps[pair_b[i]].delay_ns);
        printf("\n");
        fflush(stdout);
    } else if (strncmp(line, "go", 2) == 0) {
        printf("ready %zu %zu\n", n_taps, n_pairs);
        fflush(stdout);
        return 1;
    } else if (strncmp(line, "quit", 4) == 0) {
        return -1;
    } else if (line[0] != '\n' && line[0] != '\0' && line[0] != '#') {
        fail("bad-command", line);
    }
    return 0;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    static char ctl[1 << 20];
    size_t ctl_len = 0;
    static unsigned char buf[MAX_FRAME];
    int running = 0;

    /* Configuration phase: blocking reads of stdin until "go". */
    char *line = NULL;
    size_t lcap = 0;
    while (!running) {
        ssize_t n = getline(&line, &lcap, stdin);
        if (n < 0) return 0;
        int r = handle_line(line, 0);
        if (r < 0) return 0;
        if (r == 1) running = 1;
    }
    free(line);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t)-1;
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    ev.data.u64 = (uint64_t)-2;
    int in_fd = fileno(stdin);
    fcntl(in_fd, F_SETFL, fcntl(in_fd, F_GETFL) | O_NONBLOCK);
    epoll_ctl(ep, EPOLL_CTL_ADD, in_fd, &ev);
    for (size_t i = 0; i < n_taps; i++) {
        ev.data.u64 = i;
        epoll_ctl(ep, EPOLL_CTL_ADD, taps[i].fd, &ev);
    }

    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
        int fired = 0;
        for (int k = 0; k < n; k++) {
            uint64_t id = events[k].data.u64;
            if (id == (uint64_t)-1) {
                fired = 1;
                uint64_t expirations;
                (void)!read(tfd, &expirations, sizeof expirations);
            } else if (id == (uint64_t)-2) {
                for (;;) {
                    ssize_t r = read(in_fd, ctl + ctl_len, sizeof ctl - 1 - ctl_len);
                    if (r == 0) return 0;                  /* testbed closed the pipe */
                    if (r < 0) break;
                    ctl_len += (size_t)r;
                    size_t start = 0;
                    for (size_t i = 0; i < ctl_len; i++) {
                        if (ctl[i] != '\n') continue;
                        ctl[i] = '\0';
                        if (handle_line(ctl + start, 1) < 0) return 0;
                        start = i + 1;
                    }
                    memmove(ctl, ctl + start, ctl_len - start);
                    ctl_len -= start;
                    if (ctl_len >= sizeof ctl - 1) fail("control-line-too-long", NULL);
                }
            } else {
                read_tap(&taps[id], buf);
            }
        }
        release_due(fired);
        arm_timer(tfd);
    }
}
