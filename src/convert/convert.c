/* convert.c - fr_convert: read the folder, describe it in GGUF, stream the tensors
 * out; quantize on the way by handing the float file to frugal_quantize.
 *
 * Order of work: config.json (the family), the safetensors headers (every shard
 * validated before anything is written), the tokenizer, the tensor plan, then one
 * pass writing the file through gguf_writer's fill callback, so only one tensor's
 * output buffer is held and the source pages are dropped after each tensor. With a
 * quantized --type the float file goes to a temp file beside the target (created
 * exclusively), frugal_quantize writes the target from it (through /proc/self/fd,
 * its name removed first), and it is gone. */
#include "core/fault.h"
#include "convert/convert.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "convert/cv_internal.h"
#include "convert/hfjson.h"
#include "frugal.h"
#include "io/outfile.h"

typedef struct fill_state {
    cv_ctx *c;
    const fr_convert_params *p;
    bool report;             /* call p->on_progress (not when quantize reports after) */
    uint64_t done, total;
} fill_state;

static int fill_cb(void *user, size_t index, void *dst, size_t nbytes, fr_err *err) {
    fill_state *s = user;
    int rc = cv_fill(s->c, (int)index, dst, nbytes, err);
    s->done += nbytes;
    if (!rc && s->report && s->p->on_progress)
        s->p->on_progress(s->p->progress_user, s->done, s->total, s->c->t[index].name);
    return rc;
}

/* config.json, with a "text_config" object's keys merged over the top level. */
static int load_config(cv_ctx *c, fr_err *err) {
    char *path = hj_path(c->dir, "config.json");
    if (!path) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    int rc = hj_load(path, &c->config, err);
    if (!rc && !cJSON_IsObject(c->config)) rc = fr_err_set(err, FRUGAL_E_FORMAT, "%s: not a JSON object", path);
    if (!rc && !(c->fam = cv_family_find(c->config))) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(c->config, "architectures");
        const cJSON *a0 = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
        rc = fr_err_set(err, FRUGAL_E_UNSUPPORTED,
                        "%s: unsupported architecture '%s' (supported: Llama, Mistral, Mixtral, Qwen2, Qwen3, Qwen3-MoE, "
                        "Gemma 1/2/3, Phi-3, GPT-2)", path, a0 && cJSON_IsString(a0) ? a0->valuestring : "(none given)");
    }
    free(path);
    return rc;
}

/* The float type of the file: requested, or the source's (its first matrix's). Sets
 * *quantize when the requested type is not a float type (frugal_quantize's job). */
static void pick_float_type(cv_ctx *c, const char *type, bool *quantize) {
    *quantize = false;
    if (type && !strcasecmp(type, "f32")) c->float_type = FR_TYPE_F32;
    else if (type && !strcasecmp(type, "f16")) c->float_type = FR_TYPE_F16;
    else if (type && !strcasecmp(type, "bf16")) c->float_type = FR_TYPE_BF16;
    else {
        *quantize = type != NULL;
        c->float_type = FR_TYPE_F32;
        for (size_t i = 0; i < c->st->n_tensors; i++)
            if (c->st->tensors[i].n_dims >= 2) { c->float_type = c->st->tensors[i].dtype; break; }
    }
}

static uint32_t file_type_of(fr_type t) { return t == FR_TYPE_F32 ? 0 : t == FR_TYPE_F16 ? 1 : 32; }

static int add_tensors(cv_ctx *c, uint64_t *total, fr_err *err) {
    *total = 0;
    for (int i = 0; i < c->n_t; i++) {
        const cv_tensor *t = &c->t[i];
        if (gguf_writer_add_tensor(c->w, t->name, t->type, (uint32_t)t->n_dims, t->ne, NULL))
            return fr_err_set(err, FRUGAL_E_INVALID_ARG, "tensor '%s': cannot add to the GGUF writer", t->name);
        uint64_t n = 1;
        for (int d = 1; d < t->n_dims; d++) n *= (uint64_t)t->ne[d];
        *total += n * fr_row_size(t->type, t->ne[0]);
    }
    return FRUGAL_OK;
}

/* Reserve a unique temp name beside out (created exclusively) for the float file. */
static char *reserve_tmp(const char *out, fr_err *err) {
    size_t n = strlen(out);
    char *p = fr_malloc(n + 32);
    if (!p) { fr_err_set(err, FRUGAL_E_NOMEM, "out of memory"); return NULL; }
    snprintf(p, n + 32, "%s.f16.XXXXXX", out);
    int fd = mkstemp(p);
    if (fd < 0) {
        fr_err_set(err, FRUGAL_E_IO, "%s: cannot create a temp file beside it: %s", out, strerror(errno));
        free(p);
        return NULL;
    }
    close(fd);
    return p;
}

static int quantize_to(const fr_convert_params *p, const char *tmp, fr_err *err) {
    frugal_quantize_params q;
    frugal_quantize_params_default(&q);
    q.type = p->policy ? NULL : p->type;
    q.policy = p->policy;
    q.budget_bytes = p->budget_bytes;
    q.n_threads = p->n_threads;
    q.log = p->log;
    q.on_progress = p->on_progress;
    q.progress_user = p->progress_user;
    frugal_error e = FRUGAL_ERROR_INIT;
    int rc = frugal_quantize(tmp, p->out_path, &q, NULL, &e);
    if (rc) fr_err_set(err, rc, "%s", e.message);
    return rc;
}

/* The quantize parameters are checked before anything is read or written:
 * frugal_quantize validates type/policy/budget before it opens its input, so a call
 * on the folder (not a GGUF: it then fails opening it) answers FRUGAL_E_INVALID_ARG
 * exactly for what it would refuse after the float pass. */
static int check_quantize_args(const fr_convert_params *p, fr_err *err) {
    frugal_quantize_params q;
    frugal_quantize_params_default(&q);
    q.type = p->policy ? NULL : p->type;
    q.policy = p->policy;
    q.budget_bytes = p->budget_bytes;
    frugal_error e = FRUGAL_ERROR_INIT;
    int rc = frugal_quantize(p->in_dir, p->out_path, &q, NULL, &e);
    return rc == FRUGAL_E_INVALID_ARG ? fr_err_set(err, rc, "%s", e.message) : FRUGAL_OK;
}

static void ctx_free(cv_ctx *c) {
    for (int i = 0; i < c->n_t; i++) free(c->t[i].gen);
    free(c->t);
    gguf_writer_free(c->w);
    st_model_close(c->st);
    cJSON_Delete(c->config);
}

int fr_convert(const fr_convert_params *p, fr_convert_stats *stats, fr_err *err) {
    cv_ctx c;
    memset(&c, 0, sizeof c);
    c.dir = p->in_dir;
    bool quant = false;
    char *tmp = NULL;
    fill_state fs = {&c, p, true, 0, 0};
    int rc = fr_outfile_check_target(p->out_path, err);
    if (!rc) rc = load_config(&c, err);
    if (!rc) rc = st_model_open(p->in_dir, &c.st, err);
    if (!rc && !(c.w = gguf_writer_new())) rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    if (!rc) pick_float_type(&c, p->policy ? "auto" : p->type, &quant);
    if (!rc && quant) rc = check_quantize_args(p, err);
    if (!rc && (gguf_writer_set_str(c.w, "general.architecture", c.fam->gguf_arch) ||
                gguf_writer_set_str(c.w, "general.type", "model")))
        rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    if (!rc && (rc = c.fam->hparams(&c, err))) fr_err_prefix(err, p->in_dir);
    if (!rc && gguf_writer_set_u32(c.w, "general.file_type", file_type_of(c.float_type)))
        rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    if (!rc && gguf_writer_set_u32(c.w, "general.quantization_version", 2))
        rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    if (!rc) rc = cv_vocab(&c, err);
    if (!rc) rc = cv_plan(&c, err);
    if (!rc) rc = add_tensors(&c, &fs.total, err);
    if (!rc && quant && !(tmp = reserve_tmp(p->out_path, err))) rc = FRUGAL_E_IO;
    fs.report = !quant;  /* the quantize step reports its own progress */
    if (!rc) rc = gguf_writer_write(c.w, quant ? tmp : p->out_path, fill_cb, &fs, err);
    if (!rc && stats) {
        stats->arch = c.fam->gguf_arch;
        stats->n_tensors = c.n_t;
        stats->bytes_out = fs.total;
    }
    ctx_free(&c);
    if (!rc && quant) {
        /* quantize from the float file through an open descriptor, the name already
         * removed: an interrupted quantization leaves no float file behind */
        char via[64];
        int fd = open(tmp, O_RDONLY | O_CLOEXEC);
        snprintf(via, sizeof via, "/proc/self/fd/%d", fd);
        if (fd >= 0 && access(via, R_OK) == 0) unlink(tmp);
        rc = quantize_to(p, fd >= 0 && access(via, R_OK) == 0 ? via : tmp, err);
        if (fd >= 0) close(fd);
    }
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    return rc;
}
