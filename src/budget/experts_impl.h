/* experts_impl.h - the expert cache's state, shared by its policy (experts.c:
 * slots, eviction, routing, prediction) and its reads (experts_io.c). Private to
 * src/budget; the interface is experts.h. */
#ifndef FRUGAL_EXPERTS_IMPL_H
#define FRUGAL_EXPERTS_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget/experts.h"
#include "budget/stream.h"
#include "core/types.h"
#include "io/aread.h"

#define PAGE 4096u
#define N_PART 3 /* gate, up, down */
#define N_IO FR_EXPERTS_IO_THREADS
#define N_CONF 16          /* confidence buckets of guesses: margins of CONF_STEP sd each */
#define CONF_STEP 0.125f
#define GUESS_CACHED 255    /* a guess that was cached: nothing to read, not scored per bucket */
#define MIN_PIECE (128u << 10) /* smallest read a layer's last parts are cut into (default) */
#define PREDICT_MIN 0.4         /* default share of right guesses that starts reads ahead */
#define WASTE_FRAC 0.1          /* default cap on their wasted bytes, as a share of the need */
#define AHEAD_BURST 4           /* experts' worth of read-ahead credit at most (see next_read) */
#define AIO_DEPTH 4             /* reads in flight with AIO (default; FRUGAL_EXPERT_DEPTH): this disk read
                                   as fast at 1-4 as at 16, and a deeper probe read slower */
#define AIO_MAX 64

typedef struct slot {
    uint8_t *data;             /* page-aligned */
    int key;                   /* il * E + e, or -1 (empty) */
    int pins;                  /* > 0: in use or about to be; never evicted */
    bool loading;              /* I/O threads are reading it: parts claimed, parts done */
    int cur_part;              /* reads claimed up to part cur_part, byte cur_off of it */
    uint64_t cur_off;
    int pending;               /* pieces being read */
    bool predicted;            /* read on a prediction, not asked for by route() yet */
    bool abandoned;            /* mispredicted while loading: dropped when its reads end */
    uint64_t last_use;
    fr_weight w[N_PART];       /* views of the expert it holds */
} slot;

/* One AIO read in flight: its slot, bytes requested and bytes it must return. */
typedef struct aio_req {
    struct slot *s;
    uint64_t bytes, need;
} aio_req;

typedef struct fr_experts {
    fr_layer_source src;
    fr_stream *dense;
    frugal_model *m;
    int fd, fd_direct;
    int L, E, n_total, n_slots;
    size_t region[N_PART];     /* bytes of each matrix's part of a slot */
    size_t slot_bytes;
    void *slab;                /* the slots' memory: one accounted block of n_slots x slot_bytes */
    slot *slots;
    int *slot_of;              /* [n_total]: slot holding the expert, or -1 */
    uint32_t *freq;            /* [n_total]: aged pick counts */
    int *order;                /* [E]: route()'s answer */
    int *queue;                /* [E]: keys the I/O thread reads for the current layer */
    int *pf_queue;             /* [E]: keys guessed for the layer about to run (read after queue) */
    uint8_t *picked;           /* [E] scratch */
    uint8_t *guess;            /* [E]: the last prediction's experts, of layer guess_layer
                                  (1 + confidence bucket; 0: not guessed; GUESS_CACHED) */
    int guess_layer;           /* -1: none pending */
    double predict_min;        /* share of right guesses that starts reads ahead */
    double guess_n, guess_right; /* predicted experts and those picked, decayed (under mu) */
    double conf_n[N_CONF], conf_right[N_CONF]; /* the same per confidence bucket */
    bool split_tail;           /* cut a layer's last reads into pieces (claim_piece) */
    double waste_frac;         /* reads ahead for guesses not picked: at most this share of the picks' need */
    double ahead_credit;       /* bytes reads ahead may still spend (under mu; see next_read) */
    uint64_t min_piece;        /* their smallest size, a page multiple */
    /* under mu */
    int q_n, q_pos, pf_n, pf_pos;
    uint64_t tick, picks_since_aging;
    int in_flight;             /* reads the I/O threads are doing */
    double busy_since;         /* when in_flight last rose from 0 */
    fr_expert_stats st;
    pthread_t thread[N_IO];
    int n_started;
    fr_aread *aio;             /* NULL: N_IO threads with blocking reads instead */
    int depth;                 /* AIO reads in flight at most */
    aio_req reqs[AIO_MAX];     /* the AIO thread's own */
    int req_free[AIO_MAX], n_req_free;
    bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int err_code;
    fr_err err;
} fr_experts;

/* Policy side (experts.c), called by the readers under mu. */
/* Page-aligned file extent [*a, *a_end) of part j of slot s's expert, the bytes it
 * must have up to *need_end, and where it goes in the slot (*pos). */
void fr_experts_part_extent(const fr_experts *x, const slot *s, int j, uint64_t *a, uint64_t *a_end,
                            uint64_t *need_end, size_t *pos);
/* The next piece to read and its slot (part *j, bytes [*from, *from + *n) of its
 * extent), claimed; NULL when there is none. */
slot *fr_experts_next_piece(fr_experts *x, int *j, uint64_t *from, uint64_t *n);

/* Read side (experts_io.c). */
/* Read that piece of slot s with blocking reads (*bytes: bytes requested); before the
 * I/O threads start, or by them. */
int fr_xio_read_piece(fr_experts *x, slot *s, int j, uint64_t from, uint64_t n, uint64_t *bytes, fr_err *err);
/* Whether O_DIRECT works on x->fd_direct (else it is closed: buffered reads); page: a
 * page-aligned scratch page. */
void fr_xio_probe_direct(fr_experts *x, uint8_t *page);
/* New work for the readers (under mu): wake them all / only the AIO thread. */
void fr_xio_wake(fr_experts *x);
void fr_xio_kick(fr_experts *x);
/* Start the readers: the AIO thread where Linux AIO works on fd_direct, else N_IO
 * threads (x->st.io_async, io_depth say which). FRUGAL_E_NOMEM if a thread cannot start
 * (those started are stopped by fr_xio_stop). */
int fr_xio_start(fr_experts *x, fr_err *err);
/* Stop the readers after their reads in flight end (not under mu). */
void fr_xio_stop(fr_experts *x);

#endif
