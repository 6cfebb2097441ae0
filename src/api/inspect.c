/* inspect.c - frugal_inspect: a readable dump of a GGUF file (header, metadata,
 * tensor table, size summary by type). Works on any file the GGUF reader accepts,
 * including vocabulary-only files and models with tensor types we cannot run
 * (those are flagged, so a user sees why a load would fail). */
#include "kernels/dispatch.h"
#include "frugal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/quant_private.h"
#include "core/types.h"
#include "gguf/gguf.h"

enum { MAX_STR_SHOW = 64, MAX_ARR_SHOW = 8 };

/* Print a string value quoted, with control/non-ASCII-unsafe bytes escaped and long
 * strings truncated (the byte count is shown so the user knows). */
static void put_str(FILE *out, gguf_str s, uint64_t max) {
    uint64_t n = s.len < max ? s.len : max;
    fputc('"', out);
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c == '\n') fputs("\\n", out);
        else if (c == '\t') fputs("\\t", out);
        else if (c < 0x20 || c == 0x7f) fprintf(out, "\\x%02x", c);
        else fputc(c, out);   /* UTF-8 passes through as is */
    }
    fputc('"', out);
    if (s.len > max) fprintf(out, "... (%" PRIu64 " bytes)", s.len);
}

/* Print a numeric element or scalar of type t. */
static void put_num(FILE *out, gguf_vtype t, uint64_t u, int64_t i, double f) {
    switch (t) {
    case GGUF_VT_UINT8: case GGUF_VT_UINT16: case GGUF_VT_UINT32: case GGUF_VT_UINT64:
        fprintf(out, "%" PRIu64, u);
        break;
    case GGUF_VT_INT8: case GGUF_VT_INT16: case GGUF_VT_INT32: case GGUF_VT_INT64:
        fprintf(out, "%" PRId64, i);
        break;
    case GGUF_VT_FLOAT32: /* 7 digits: what a float holds, so 1e-5 prints as 1e-05 */
        fprintf(out, "%.7g", f);
        break;
    case GGUF_VT_FLOAT64:
        fprintf(out, "%.16g", f);
        break;
    case GGUF_VT_BOOL:
        fputs(u ? "true" : "false", out);
        break;
    default:
        fputs("?", out);
    }
}

static void put_kv(FILE *out, const gguf_kv *kv) {
    char tname[48];
    if (kv->type == GGUF_VT_ARRAY)
        snprintf(tname, sizeof tname, "arr[%s,%" PRIu64 "]", gguf_vtype_name(kv->arr_type), kv->arr_n);
    else
        snprintf(tname, sizeof tname, "%s", gguf_vtype_name(kv->type));
    fprintf(out, "  %-44.*s %-18s = ", (int)(kv->key.len < 200 ? kv->key.len : 200), kv->key.ptr, tname);
    if (kv->type == GGUF_VT_STRING) {
        put_str(out, kv->v.str, MAX_STR_SHOW);
    } else if (kv->type == GGUF_VT_ARRAY) {
        uint64_t show = kv->arr_n < MAX_ARR_SHOW ? kv->arr_n : MAX_ARR_SHOW;
        fputc('[', out);
        for (uint64_t i = 0; i < show; i++) {
            if (i) fputs(", ", out);
            if (kv->arr_type == GGUF_VT_STRING) {
                put_str(out, kv->arr_strs[i], 24);
            } else {
                int64_t v = gguf_arr_i64(kv, i);
                put_num(out, kv->arr_type, (uint64_t)v, v, gguf_arr_f64(kv, i));
            }
        }
        if (kv->arr_n > show) fputs(", ...", out);
        fputc(']', out);
    } else {
        put_num(out, kv->type, kv->v.u64, kv->v.i64, kv->v.f64);
    }
    fputc('\n', out);
}

/* Size with a binary unit, for the humans reading the summary. */
static void fmt_bytes(char *buf, size_t n, uint64_t b) {
    if (b >= (1ull << 30)) snprintf(buf, n, "%.2f GiB", (double)b / (1ull << 30));
    else if (b >= (1ull << 20)) snprintf(buf, n, "%.2f MiB", (double)b / (1ull << 20));
    else if (b >= 1024) snprintf(buf, n, "%.2f KiB", (double)b / 1024);
    else snprintf(buf, n, "%" PRIu64 " B", b);
}

/* Opens path with the validating reader and prints everything to out. On failure
 * nothing is printed and err holds "<path>: <problem>". */
int frugal_inspect(const char *path, FILE *out, frugal_error *err) {
    if (!path || !out) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_inspect: NULL argument");
    gguf_file *f = NULL;
    int rc = gguf_open(path, &f, err);
    if (rc) {
        fr_err_prefix(err, path);
        return rc;
    }
    fprintf(out, "file: %s\n", path);
    fprintf(out, "GGUF version %" PRIu32 ", %" PRIu64 " metadata keys, %" PRIu64
                 " tensors, alignment %" PRIu64 ", data offset %" PRIu64 ", file size %" PRIu64 "\n",
            f->version, f->n_kv, f->n_tensors, f->alignment, f->data_offset, f->size);

    fprintf(out, "\nmetadata (%" PRIu64 " keys):\n", f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++) put_kv(out, &f->kv[i]);

    /* per-type totals; ids are < FR_TYPE_COUNT for every type the reader accepts */
    uint64_t cnt[FR_TYPE_COUNT] = {0}, bytes[FR_TYPE_COUNT] = {0}, other_cnt = 0, other_bytes = 0;
    uint64_t total_params = 0, total_bytes = 0, n_unsupported = 0;
    /* frugal's own types (core/quant_private.h), counted apart: no other engine reads them */
    enum { NP = FR_TYPE_PRIVATE_END - FR_TYPE_PRIVATE_BASE };
    uint64_t pcnt[NP] = {0}, pbytes[NP] = {0};

    fprintf(out, "\ntensors (%" PRIu64 "):\n", f->n_tensors);
    fprintf(out, "  %5s  %-32s %-8s %-28s %14s %14s\n", "#", "name", "type", "shape", "bytes", "offset");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char shape[96];
        int pos = snprintf(shape, sizeof shape, "[");
        uint64_t nel = 1;
        for (uint32_t d = 0; d < t->n_dims && pos < (int)sizeof shape; d++) {
            pos += snprintf(shape + pos, sizeof shape - (size_t)pos, d ? ", %" PRId64 : "%" PRId64, t->ne[d]);
            nel *= (uint64_t)t->ne[d]; /* the reader checked the product fits */
        }
        if (pos < (int)sizeof shape) snprintf(shape + pos, sizeof shape - (size_t)pos, "]");
        const char *tn = fr_type_name(t->type);
        const fr_type_traits *tr = fr_type_traits_get(t->type);
        bool runnable = tr && tr->supported;
        fprintf(out, "  %5" PRIu64 "  %-32.*s %-8s %-28s %14" PRIu64 " %14" PRIu64 "%s\n", i,
                (int)(t->name.len < 200 ? t->name.len : 200), t->name.ptr, tn ? tn : "?", shape,
                t->nbytes, t->offset, runnable ? "" : "  [unsupported]");
        if (!runnable) n_unsupported++;
        if (t->type < FR_TYPE_COUNT) {
            cnt[t->type]++;
            bytes[t->type] += t->nbytes;
        } else if (t->type >= FR_TYPE_PRIVATE_BASE && t->type < FR_TYPE_PRIVATE_END) {
            pcnt[t->type - FR_TYPE_PRIVATE_BASE]++;
            pbytes[t->type - FR_TYPE_PRIVATE_BASE] += t->nbytes;
        } else {
            other_cnt++;
            other_bytes += t->nbytes;
        }
        total_params += nel;
        total_bytes += t->nbytes;
    }

    fprintf(out, "\nsummary by type:\n");
    fprintf(out, "  %-8s %8s %16s %12s %7s %7s\n", "type", "tensors", "bytes", "", "share", "bpw");
    for (uint32_t ty = 0; ty < FR_TYPE_COUNT; ty++) {
        if (!cnt[ty]) continue;
        const char *tn = fr_type_name(ty);
        const fr_type_traits *tr = fr_type_traits_get(ty);
        char human[32];
        fmt_bytes(human, sizeof human, bytes[ty]);
        /* bits per weight of the format itself (block bytes * 8 / values per block) */
        const double bpw = tr && tr->blck_size ? 8.0 * (double)tr->type_size / tr->blck_size : 0.0;
        fprintf(out, "  %-8s %8" PRIu64 " %16" PRIu64 " %12s %6.2f%% %7.4g%s\n", tn ? tn : "?", cnt[ty], bytes[ty],
                human, total_bytes ? 100.0 * (double)bytes[ty] / (double)total_bytes : 0.0, bpw,
                tr && tr->supported ? "" : "  [unsupported by frugal]");
    }
    char priv[64] = "";
    for (uint32_t k = 0; k < NP; k++) {
        if (!pcnt[k]) continue;
        char human[32];
        fmt_bytes(human, sizeof human, pbytes[k]);
        fprintf(out, "  %-8s %8" PRIu64 " %16" PRIu64 " %12s %6.2f%%  [frugal-only]\n",
                fr_type_name(FR_TYPE_PRIVATE_BASE + k), pcnt[k], pbytes[k], human,
                total_bytes ? 100.0 * (double)pbytes[k] / (double)total_bytes : 0.0);
        size_t l = strlen(priv);
        snprintf(priv + l, sizeof priv - l, "%s%s", l ? ", " : "", fr_type_name(FR_TYPE_PRIVATE_BASE + k));
    }
    if (other_cnt)
        fprintf(out, "  %-8s %8" PRIu64 " %16" PRIu64 "\n", "other", other_cnt, other_bytes);
    char human[32];
    fmt_bytes(human, sizeof human, total_bytes);
    fprintf(out, "\ntotal: %" PRIu64 " parameters, %" PRIu64 " bytes of tensor data (%s)\n",
            total_params, total_bytes, human);
    if (priv[0])
        fprintf(out, "note: uses frugal-only tensor types (%s): other engines cannot read this file\n", priv);
    if (n_unsupported)
        fprintf(out, "warning: %" PRIu64 " tensor(s) have types frugal cannot run\n", n_unsupported);
    gguf_close(f);
    return ferror(out) ? fr_err_set(err, FRUGAL_E_IO, "%s: error writing the output", path) : FRUGAL_OK;
}
