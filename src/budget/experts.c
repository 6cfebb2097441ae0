/* experts.c - the expert cache (see experts.h): slots, eviction, routing, prediction;
 * the reads themselves are in experts_io.c. */
#include "budget/experts_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/fault.h"
#include "core/progress.h"
#include "mem/alloc.h"


/* Matrix part j (gate, up, down) of layer il's expert stacks. */
static const fr_weight *stack(const frugal_model *m, int il, int j) { return &m->layers[il].mat[FR_WGATE_EXPS + j]; }

static uint64_t part_len(const frugal_model *m, int il, int j) {
    const fr_weight *w = stack(m, il, j);
    return (uint64_t)fr_row_size(w->type, w->n_in) * (uint64_t)(w->n_out / m->hp.n_expert);
}

/* File offset of part j of expert e of layer il (the stacks are row-major in the file). */
static uint64_t part_off(const frugal_model *m, int il, int j, int e) {
    const fr_weight *w = stack(m, il, j);
    const uint8_t *p = w->src ? w->src : w->data;
    return (uint64_t)(p - m->file->map) + (uint64_t)e * part_len(m, il, j);
}

/* Every layer has its three stacks, each inside the mapped file (read from there). */
static bool has_experts(const frugal_model *m) {
    if (!m || !m->layers || !m->file || m->hp.n_expert <= 0) return false;
    for (int il = 0; il < m->hp.n_layer; il++)
        for (int j = 0; j < N_PART; j++) {
            const fr_weight *w = stack(m, il, j);
            const uint8_t *p = w->src ? w->src : w->data;
            if (!p || p < m->file->map ||
                (uint64_t)(p - m->file->map) + part_len(m, il, j) * (uint64_t)m->hp.n_expert > m->file->size)
                return false;
        }
    return true;
}

/* Largest page-aligned extent part j can need over the layers (an expert's rows may
 * start mid-page: one page more than the rounded length). */
static size_t region_bytes(const frugal_model *m, int j) {
    uint64_t r = 0;
    for (int il = 0; il < m->hp.n_layer; il++) {
        uint64_t b = (part_len(m, il, j) + PAGE - 1) / PAGE * PAGE + PAGE;
        if (b > r) r = b;
    }
    return (size_t)r;
}

uint64_t fr_experts_read_bytes(const frugal_model *m) {
    if (!has_experts(m)) return 0;
    uint64_t b = 0;
    for (int j = 0; j < N_PART; j++) b += region_bytes(m, j);
    return b;
}

uint64_t fr_experts_slot_bytes(const frugal_model *m) {
    uint64_t b = fr_experts_read_bytes(m);
    return b ? b + PAGE : 0; /* + alignment of the allocation */
}

/* Point slot s's views at expert `key`'s three matrices in its buffer (their bytes
 * arrive by read_piece; the views are valid even after a read error, so the forward
 * pass always gets usable pointers). */
static void set_views(fr_experts *x, slot *s, int key) {
    const int il = key / x->E, e = key % x->E;
    size_t pos = 0;
    for (int j = 0; j < N_PART; j++) {
        const fr_weight *st = stack(x->m, il, j);
        const uint64_t off = part_off(x->m, il, j, e), len = part_len(x->m, il, j);
        fr_weight *w = &s->w[j];
        *w = *st;
        w->n_out /= x->E;
        w->data = s->data + pos + (off & (PAGE - 1));
        w->src = (const uint8_t *)(st->src ? st->src : st->data) + (uint64_t)e * len;
        w->layout = FR_LAYOUT_ROWS;
        pos += x->region[j];
    }
}

/* Page-aligned file extent [*a, *a_end) of part j of slot s's expert, the bytes it
 * must have up to *need_end, and where it goes in the slot (*pos). */
void fr_experts_part_extent(const fr_experts *x, const slot *s, int j, uint64_t *a, uint64_t *a_end, uint64_t *need_end,
                        size_t *pos) {
    const int il = s->key / x->E, e = s->key % x->E;
    const uint64_t off = part_off(x->m, il, j, e), len = part_len(x->m, il, j);
    *a = off & ~(uint64_t)(PAGE - 1);
    *a_end = (off + len + PAGE - 1) & ~(uint64_t)(PAGE - 1);
    *need_end = off + len;
    *pos = 0;
    for (int k = 0; k < j; k++) *pos += x->region[k];
}

/* The slot to evict for a new expert (see experts.h), or -1 when all are pinned.
 * Predicted experts (about to be asked for) go last; a prediction's read never evicts
 * another prediction. */
static int victim(const fr_experts *x, bool for_prediction) {
    int best = -1;
    for (int i = 0; i < x->n_slots; i++) {
        const slot *s = &x->slots[i];
        if (s->pins > 0 || s->loading || (for_prediction && s->predicted)) continue;
        if (s->key < 0) return i;
        if (best < 0) { best = i; continue; }
        const slot *b = &x->slots[best];
        uint32_t fs = x->freq[s->key], fb = x->freq[b->key];
        if (s->predicted != b->predicted) {
            if (b->predicted) best = i;
        } else if (fs < fb || (fs == fb && s->last_use < b->last_use)) {
            best = i;
        }
    }
    return best;
}

/* 1 when a predicted expert waits to be read (those cached meanwhile are skipped). */
static bool prediction_pending(fr_experts *x) {
    while (x->pf_pos < x->pf_n && x->slot_of[x->pf_queue[x->pf_pos]] >= 0) x->pf_pos++;
    return x->pf_pos < x->pf_n;
}

/* The next read for an I/O thread, with its slot in *v: the current layer's misses
 * first, then the experts guessed for the layer about to run, each of those only while
 * the read-ahead credit holds a whole expert (route() refills it). -1 when there is
 * none (or no slot to read into). */
static int next_read(fr_experts *x, int *v, bool *predicted) {
    if (x->q_pos < x->q_n) {
        *predicted = false;
        return (*v = victim(x, false)) >= 0 ? x->queue[x->q_pos++] : -1;
    }
    *predicted = true;
    if (!prediction_pending(x) || x->ahead_credit < (double)x->st.expert_bytes || (*v = victim(x, true)) < 0) return -1;
    x->ahead_credit -= (double)x->st.expert_bytes; /* given back by route() if the guess is picked */
    return x->pf_queue[x->pf_pos++];
}

/* Bytes of the current layer's misses not claimed by an I/O thread yet (those of
 * queued experts estimated at a whole expert each). */
static uint64_t layer_unclaimed(const fr_experts *x) {
    uint64_t r = (uint64_t)(x->q_n - x->q_pos) * x->st.expert_bytes;
    for (int i = 0; i < x->n_slots; i++) {
        const slot *s = &x->slots[i];
        if (!s->loading || s->predicted || s->cur_part >= N_PART) continue;
        for (int j = s->cur_part; j < N_PART; j++) {
            uint64_t a, a_end, need_end;
            size_t pos;
            fr_experts_part_extent(x, s, j, &a, &a_end, &need_end, &pos);
            r += a_end - a - (j == s->cur_part ? s->cur_off : 0);
        }
    }
    return r;
}

/* Claim the next piece of slot s's reads: part *j, bytes [*from, *from + *n) of its
 * extent. Whole parts while the layer has plenty left; its last bytes are cut into
 * N_IO equal pieces (>= min_piece), so all I/O threads stay busy to the end of the
 * layer's misses instead of one finishing the last part alone. */
static void claim_piece(fr_experts *x, slot *s, int *j, uint64_t *from, uint64_t *n) {
    uint64_t a, a_end, need_end;
    size_t pos;
    fr_experts_part_extent(x, s, s->cur_part, &a, &a_end, &need_end, &pos);
    const uint64_t left = a_end - a - s->cur_off;
    uint64_t take = left;
    if (!s->predicted && x->split_tail) {
        const uint64_t r = layer_unclaimed(x);
        if (r < (uint64_t)N_IO * (a_end - a)) {
            take = (r / N_IO + PAGE - 1) & ~(uint64_t)(PAGE - 1);
            if (take < x->min_piece) take = x->min_piece;
            if (take > left || left - take < x->min_piece) take = left;
        }
    }
    *j = s->cur_part;
    *from = s->cur_off;
    *n = take;
    s->pending++;
    s->cur_off += take;
    if (s->cur_off >= a_end - a) s->cur_part++, s->cur_off = 0;
}

/* The next piece to read, its slot returned (see claim_piece for *j, *from, *n); NULL
 * when there is none. The unclaimed parts of experts already started come first (an
 * expert is ready soonest when its three matrices are read side by side), then a new
 * expert from the queues: its victim slot is taken, pinned for the consumer unless
 * predicted. */
slot *fr_experts_next_piece(fr_experts *x, int *j, uint64_t *from, uint64_t *n) {
    for (int i = 0; i < x->n_slots; i++) {
        slot *s = &x->slots[i];
        if (s->loading && s->cur_part < N_PART) { claim_piece(x, s, j, from, n); return s; }
    }
    int v = -1;
    bool predicted = false;
    const int key = next_read(x, &v, &predicted);
    if (key < 0) return NULL;
    slot *s = &x->slots[v];
    if (s->key >= 0) x->slot_of[s->key] = -1;
    s->key = key;
    s->pins = predicted ? 0 : 1; /* the consumer's; put() releases it */
    s->predicted = predicted;
    s->loading = true;
    s->abandoned = false;
    s->cur_part = 0;
    s->cur_off = 0;
    s->pending = 0;
    if (predicted) x->st.prefetched++;
    x->slot_of[key] = v;
    set_views(x, s, key);
    claim_piece(x, s, j, from, n);
    return s;
}

/* Count one pick of key; age every count once n_total picks were counted. */
static void count_pick(fr_experts *x, int key) {
    if (x->freq[key] < UINT32_MAX) x->freq[key]++;
    if (++x->picks_since_aging >= (uint64_t)x->n_total) {
        x->picks_since_aging = 0;
        for (int k = 0; k < x->n_total; k++) x->freq[k] >>= 1;
    }
}

/* Prediction accuracy, kept whether or not its reads were started: how many of the
 * guessed experts this layer picked (picked[] filled). Decayed so that it follows
 * the current text, not the whole history. */
static void score_guess(fr_experts *x) {
    for (int e = 0; e < x->E; e++) {
        if (!x->guess[e]) continue;
        x->guess_n += 1.0;
        x->guess_right += x->picked[e];
        if (x->guess[e] == GUESS_CACHED) continue;
        x->conf_n[x->guess[e] - 1] += 1.0;
        x->conf_right[x->guess[e] - 1] += x->picked[e];
    }
    if (x->guess_n > 4096) {
        x->guess_n *= 0.5, x->guess_right *= 0.5;
        for (int b = 0; b < N_CONF; b++) x->conf_n[b] *= 0.5, x->conf_right[b] *= 0.5;
    }
    x->guess_layer = -1;
}

/* Reads on a prediction pay off only when most of them are picked: a disk-bound run
 * loses the bandwidth of every wrong one (and reads bytes no pick needs). Guesses
 * differ: one far above the best expert not guessed stays a pick after the
 * attention's output is added, one at the edge is a coin toss. So the guesses that
 * would be read (those not cached: cached ones are picked more often, they would
 * flatter the score) are scored per confidence bucket (their margin), and reads
 * ahead start for the guesses of the buckets from the lowest one down to which the
 * recent guesses, pooled, were right at least predict_min of the time (PREDICT_MIN;
 * FRUGAL_EXPERT_PREDICT_MIN overrides, 0 trusts every guess from the first), 64 of
 * them scored at least. Returns that bucket (N_CONF: none qualifies). Why 0.4, not
 * higher: reads ahead run while the disk would idle (the attention), and the credit
 * of next_read bounds the bytes the wrong ones cost; on a random 128-expert model
 * (bench/moe_cgroup.sh, right ~45 % of the time) 0.4 with the cap read ~9 % more
 * bytes and generated ~10 % faster than 0.8, which never read ahead there. */
static int trusted_bucket(const fr_experts *x) {
    if (x->predict_min <= 0) return 0;
    double n = 0.0, r = 0.0;
    int lowest = N_CONF;
    for (int b = N_CONF - 1; b >= 0; b--) {
        n += x->conf_n[b];
        r += x->conf_right[b];
        if (n >= 64 && r >= x->predict_min * n) lowest = b;
    }
    return lowest;
}

static int src_route(void *user, int il, const int *sel, int n_sel, const int **order) {
    fr_experts *x = user;
    memset(x->picked, 0, (size_t)x->E);
    pthread_mutex_lock(&x->mu);
    x->tick++;
    for (int i = 0; i < n_sel; i++) {
        if (sel[i] < 0 || sel[i] >= x->E) continue;
        x->picked[sel[i]] = 1;
        count_pick(x, il * x->E + sel[i]);
    }
    x->pf_n = x->pf_pos = 0; /* predictions not started yet: the picks are known now */
    if (x->guess_layer == il) score_guess(x);
    int n_hit = 0, n_pred = 0, n_miss = 0;
    for (int e = 0; e < x->E; e++) {
        if (!x->picked[e]) continue;
        const int key = il * x->E + e, si = x->slot_of[key];
        if (si >= 0 && !x->slots[si].predicted) {
            x->slots[si].pins++;
            x->order[n_hit++] = e;
        }
    }
    for (int e = 0; e < x->E; e++) { /* read on a prediction: a miss the read came early for */
        if (!x->picked[e]) continue;
        const int key = il * x->E + e, si = x->slot_of[key];
        if (si >= 0 && x->slots[si].predicted) {
            x->slots[si].pins++;
            x->slots[si].predicted = false;
            x->order[n_hit + n_pred++] = e;
        } else if (si < 0) {
            x->queue[n_miss++] = key;
        }
    }
    for (int i = 0; i < x->n_slots; i++) { /* the rest: mispredicted; unread parts are not read */
        slot *s = &x->slots[i];
        if (s->predicted && s->loading) { /* no longer findable; emptied when its reads end */
            s->cur_part = N_PART;
            x->slot_of[s->key] = -1;
            if (s->pending == 0) s->loading = false, s->key = -1;
            else s->abandoned = true;
        }
        s->predicted = false;
    }
    for (int i = 0; i < n_miss; i++) x->order[n_hit + n_pred + i] = x->queue[i] % x->E; /* read order */
    x->st.hits += (uint64_t)n_hit;
    x->st.misses += (uint64_t)(n_pred + n_miss);
    /* reads ahead: the right ones' bytes back, plus waste_frac of this layer's need */
    const double eb = (double)x->st.expert_bytes;
    x->ahead_credit += eb * (n_pred + x->waste_frac * (n_pred + n_miss));
    if (x->ahead_credit > AHEAD_BURST * eb) x->ahead_credit = AHEAD_BURST * eb;
    x->st.prefetch_used += (uint64_t)n_pred;
    x->st.guesses = (uint64_t)x->guess_n;
    x->st.guesses_right = (uint64_t)x->guess_right;
    x->q_n = n_miss;
    x->q_pos = 0;
    fr_xio_wake(x);
    pthread_mutex_unlock(&x->mu);
    *order = x->order;
    return n_hit + n_pred + n_miss;
}

/* Layer il will likely pick sel[] (margins conf[], may be NULL): remember the guess
 * (scored by the next route()), and queue the distinct guessed experts not cached
 * whose confidence bucket is trusted (trusted_bucket), to be read once the current
 * layer's misses are. */
static void src_prefetch(void *user, int il, const int *sel, const float *conf, int n_sel) {
    fr_experts *x = user;
    if (il < 0 || il >= x->L) return;
    memset(x->guess, 0, (size_t)x->E);
    for (int i = 0; i < n_sel; i++) {
        if (sel[i] < 0 || sel[i] >= x->E) continue;
        const float c = conf ? conf[i] / CONF_STEP : 0.0f;
        const int b = c >= N_CONF - 1 ? N_CONF - 1 : c > 0 ? (int)c : 0;
        if (b + 1 > x->guess[sel[i]]) x->guess[sel[i]] = (uint8_t)(b + 1); /* a batch: the surest */
    }
    pthread_mutex_lock(&x->mu);
    x->guess_layer = il;
    x->pf_n = x->pf_pos = 0;
    for (int e = 0; e < x->E; e++)
        if (x->guess[e] && x->slot_of[il * x->E + e] >= 0) x->guess[e] = GUESS_CACHED;
    /* surest first: the attention may end before all are read, and those left are dropped */
    for (int b = N_CONF - 1, from = trusted_bucket(x); b >= from; b--)
        for (int e = 0; e < x->E; e++)
            if (x->guess[e] == b + 1) x->pf_queue[x->pf_n++] = il * x->E + e;
    fr_xio_wake(x);
    pthread_mutex_unlock(&x->mu);
}

static const fr_weight *src_get(void *user, int il, int e) {
    fr_experts *x = user;
    const int key = il * x->E + e;
    pthread_mutex_lock(&x->mu);
    if (x->slot_of[key] < 0 || x->slots[x->slot_of[key]].loading) {
        const double t0 = fr_now_s();
        while (x->slot_of[key] < 0 || x->slots[x->slot_of[key]].loading) pthread_cond_wait(&x->cv, &x->mu);
        x->st.wait_s += fr_now_s() - t0;
    }
    slot *s = &x->slots[x->slot_of[key]];
    s->last_use = x->tick;
    pthread_mutex_unlock(&x->mu);
    return s->w;
}

static int src_ready(void *user, int il, int e) {
    fr_experts *x = user;
    pthread_mutex_lock(&x->mu);
    const int si = x->slot_of[il * x->E + e], ready = si >= 0 && !x->slots[si].loading;
    pthread_mutex_unlock(&x->mu);
    return ready;
}

static void src_put(void *user, int il, int e) {
    fr_experts *x = user;
    pthread_mutex_lock(&x->mu);
    const int si = x->slot_of[il * x->E + e];
    if (si >= 0 && x->slots[si].pins > 0) x->slots[si].pins--;
    pthread_cond_broadcast(&x->cv);
    if (x->q_pos < x->q_n) fr_xio_kick(x); /* a miss waits for a slot */
    pthread_mutex_unlock(&x->mu);
}

static const fr_layer *src_acquire(void *user, int il) {
    fr_layer_source *d = fr_stream_source(((fr_experts *)user)->dense);
    return d->acquire(d->user, il);
}

static void src_release(void *user, int il) {
    fr_layer_source *d = fr_stream_source(((fr_experts *)user)->dense);
    d->release(d->user, il);
}

static int src_check(void *user, fr_err *err) {
    fr_experts *x = user;
    int rc = fr_stream_check(x->dense, err);
    if (rc) return rc;
    pthread_mutex_lock(&x->mu);
    rc = x->err_code;
    if (rc) fr_err_set(err, rc, "%s", x->err.message);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

static void experts_free(fr_experts *x) {
    if (!x) return;

    fr_xio_stop(x);
    if (x->slots)
        fr_mem_free(FR_MEM_IO, x->slab, x->slot_bytes * (size_t)x->n_slots);
    free(x->slots);
    free(x->slot_of);
    free(x->freq);
    free(x->order);
    free(x->queue);
    free(x->pf_queue);
    free(x->picked);
    free(x->guess);
    fr_stream_free(x->dense);
    if (x->fd >= 0) close(x->fd);
    if (x->fd_direct >= 0) close(x->fd_direct);
    pthread_cond_destroy(&x->cv);
    pthread_mutex_destroy(&x->mu);
    free(x);
}

static void src_destroy(void *user) { experts_free(user); }

/* Allocate the slots and fill them, expert s / L of layer s % L into slot s: an even
 * spread, the plan's resident experts. The slots are one block, not one allocation
 * each: a block that large is backed by transparent huge pages (mem/alloc.c), so the
 * expert matmuls take a TLB miss per 2 MiB instead of per 4 KiB, and the O_DIRECT
 * reads pin fewer pages; the accounted bytes are the same. */
static int fill_slots(fr_experts *x, fr_err *err) {
    if (x->slot_bytes > SIZE_MAX / (size_t)x->n_slots ||
        !(x->slab = fr_mem_alloc(FR_MEM_IO, x->slot_bytes * (size_t)x->n_slots)))
        return fr_err_set(err, FRUGAL_E_NOMEM, "cannot allocate %.1f MiB for %d expert cache slots",
                          x->slot_bytes / 1048576.0 * x->n_slots, x->n_slots);
    uint8_t *base = (uint8_t *)(((uintptr_t)x->slab + PAGE - 1) & ~(uintptr_t)(PAGE - 1));
    for (int i = 0; i < x->n_slots; i++) {
        slot *s = &x->slots[i];
        s->key = -1;
        s->data = base + (size_t)i * (x->slot_bytes - PAGE); /* slot_bytes - PAGE: the page-multiple reads */
        if (i == 0) fr_xio_probe_direct(x, s->data);
        if (i >= x->n_total) continue;
        const int key = (i % x->L) * x->E + (i / x->L);
        uint64_t bytes;
        s->key = key;
        set_views(x, s, key);
        for (int j = 0; j < N_PART; j++) {
            int rc = fr_xio_read_piece(x, s, j, 0, 0, &bytes, err);
            if (rc) return rc;
        }
        x->slot_of[key] = i;
        fr_progress("experts", (uint64_t)i + 1, (uint64_t)x->n_slots);
    }
    return FRUGAL_OK;
}

int fr_experts_new(frugal_model *m, int n_slots, int n_dense_resident, int n_io_buf, fr_layer_source **out,
                   fr_err *err) {
    *out = NULL;
    if (!has_experts(m) || n_slots < 1)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "expert cache: %s",
                          n_slots < 1 ? "needs at least one slot" : "the model has no expert tensors");
    fr_experts *x = fr_calloc(1, sizeof *x);
    if (!x) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    x->m = m;
    x->fd = x->fd_direct = -1;
    x->L = m->hp.n_layer;
    x->E = m->hp.n_expert;
    x->n_total = x->L * x->E;
    x->n_slots = n_slots;
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    x->src = (fr_layer_source){x,       src_acquire, src_release, src_check,    src_destroy,
                               src_route, src_get,   src_put,     src_ready,    src_prefetch};
    for (int j = 0; j < N_PART; j++) x->region[j] = region_bytes(m, j);
    x->slot_bytes = (size_t)fr_experts_slot_bytes(m);
    x->st.n_slots = n_slots;
    x->st.n_total = x->n_total;
    for (int il = 0; il < x->L; il++) {
        uint64_t b = 0;
        for (int j = 0; j < N_PART; j++) b += part_len(m, il, j);
        if (b > x->st.expert_bytes) x->st.expert_bytes = b;
    }
    int rc = fr_stream_new_dense(m, n_dense_resident, n_io_buf, &x->dense, err); /* drops the mapping's pages */
    if (rc) goto fail;
    x->fd = open(m->path, O_RDONLY | O_CLOEXEC);
    if (x->fd < 0) {
        rc = fr_err_set(err, FRUGAL_E_IO, "%s: cannot open for expert streaming: %s", m->path, strerror(errno));
        goto fail;
    }
    x->fd_direct = open(m->path, O_RDONLY | O_CLOEXEC | O_DIRECT); /* -1 is fine: buffered */
    x->slots = fr_calloc((size_t)n_slots, sizeof *x->slots);
    x->slot_of = fr_malloc(sizeof *x->slot_of * (size_t)x->n_total);
    x->freq = fr_calloc((size_t)x->n_total, sizeof *x->freq);
    x->order = fr_calloc((size_t)x->E, sizeof *x->order);
    x->queue = fr_calloc((size_t)x->E, sizeof *x->queue);
    x->pf_queue = fr_calloc((size_t)x->E, sizeof *x->pf_queue);
    x->picked = fr_calloc((size_t)x->E, 1);
    x->guess = fr_calloc((size_t)x->E, 1);
    x->guess_layer = -1;
    const char *pm = getenv("FRUGAL_EXPERT_PREDICT_MIN");
    x->predict_min = pm && *pm ? atof(pm) : PREDICT_MIN;
    const char *wf = getenv("FRUGAL_EXPERT_WASTE");
    x->waste_frac = wf && *wf ? atof(wf) : WASTE_FRAC;
    const char *st = getenv("FRUGAL_EXPERT_SPLIT");
    x->split_tail = st && *st == '1';
    /* FRUGAL_EXPERT_PIECE_KIB: the smallest piece (tests cut small models' reads too) */
    const char *pk = getenv("FRUGAL_EXPERT_PIECE_KIB");
    const long kib = pk && *pk ? atol(pk) : 0;
    x->min_piece = kib >= 4 ? ((uint64_t)kib << 10) & ~(uint64_t)(PAGE - 1) : MIN_PIECE;
    if (!x->slots || !x->slot_of || !x->freq || !x->order || !x->queue || !x->pf_queue || !x->picked || !x->guess) {
        rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
        goto fail;
    }
    for (int k = 0; k < x->n_total; k++) x->slot_of[k] = -1;
    if ((rc = fill_slots(x, err))) goto fail;
    if ((rc = fr_xio_start(x, err))) goto fail;
    *out = &x->src;
    return FRUGAL_OK;
fail:
    experts_free(x);
    return rc;
}

int fr_experts_stats(const fr_layer_source *src, fr_expert_stats *out) {
    if (!src || src->expert_route != src_route) return 0;
    fr_experts *x = src->user;
    pthread_mutex_lock(&x->mu);
    *out = x->st;
    pthread_mutex_unlock(&x->mu);
    return 1;
}
