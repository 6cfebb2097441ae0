/* hfjson.h - small helpers over cJSON for the files of a Hugging Face folder
 * (config.json, tokenizer.json, tokenizer_config.json, the safetensors index). */
#ifndef FRUGAL_HFJSON_H
#define FRUGAL_HFJSON_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/error.h"

/* Parse the JSON file at path. FRUGAL_OK with *out (free with cJSON_Delete);
 * FRUGAL_E_IO naming the file when it cannot be read ("missing" when absent),
 * FRUGAL_E_FORMAT naming it and the byte offset when it is not JSON. */
int hj_load(const char *path, cJSON **out, fr_err *err);
/* True when path names an existing regular file. */
bool hj_exists(const char *path);
/* dir + "/" + name in a malloc'ed string (NULL on OOM). */
char *hj_path(const char *dir, const char *name);

/* Typed lookups on an object: true and *v set when key holds that kind of value. */
bool hj_num(const cJSON *o, const char *key, double *v);
bool hj_int(const cJSON *o, const char *key, int64_t *v);   /* a number with no fraction */
bool hj_bool(const cJSON *o, const char *key, bool *v);
const char *hj_str(const cJSON *o, const char *key);        /* NULL unless a string */
const cJSON *hj_obj(const cJSON *o, const char *key);       /* NULL unless an object */

#endif
