/* safety_cli.c - see safety_cli.h. */
#include "safety_cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef FRUGAL_HAVE_CJSON
#include <cjson/cJSON.h>

/* One key of the policy file into p; 0 ok, else the error was printed. */
static int file_key(const char *path, const cJSON *it, frugal_safety_policy *p) {
    static const char *dbl[] = {"max_temp", "max_gpu_temp", "max_util", "max_gpu_util", "max_power", "max_psi", "duty"};
    double *dst[] = {&p->max_temp, &p->max_gpu_temp, &p->max_util, &p->max_gpu_util, &p->max_power, &p->max_psi, &p->duty};
    for (int i = 0; i < 7; i++) {
        if (strcmp(it->string, dbl[i])) continue;
        if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0) || isinf(it->valuedouble)) {
            cli_error("%s: \"%s\" must be a number >= 0", path, it->string);
            return 1;
        }
        *dst[i] = it->valuedouble;
        return 0;
    }
    if (!strcmp(it->string, "interval_ms")) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 10 || it->valuedouble > 60000) {
            cli_error("%s: \"interval_ms\" must be a number in 10..60000", path);
            return 1;
        }
        p->interval_ms = (int)it->valuedouble;
        return 0;
    }
    if (!strcmp(it->string, "min_free")) {
        uint64_t b = 0;
        if (cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble < 1e18) b = (uint64_t)it->valuedouble;
        else if (!cJSON_IsString(it) || frugal_parse_size(it->valuestring, &b) != 0) {
            cli_error("%s: \"min_free\" must be bytes or a size such as \"512M\"", path);
            return 1;
        }
        p->min_free = b;
        return 0;
    }
    cli_error("%s: unknown key \"%s\" (keys: max_temp, max_gpu_temp, max_util, max_gpu_util, max_power, "
              "min_free, max_psi, duty, interval_ms)", path, it->string);
    return 1;
}

static int read_policy_file(const char *path, frugal_safety_policy *p) {
    size_t len;
    char *text = cli_read_file(path, &len);
    if (!text) return 1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root || !cJSON_IsObject(root)) {
        cli_error("%s: not a JSON object", path);
        cJSON_Delete(root);
        return 1;
    }
    int rc = 0;
    for (const cJSON *it = root->child; it && !rc; it = it->next) rc = file_key(path, it, p);
    cJSON_Delete(root);
    return rc;
}
#else
static int read_policy_file(const char *path, frugal_safety_policy *p) {
    (void)p;
    cli_error("%s: --policy-file needs a build with cJSON (Debian: libcjson-dev)", path);
    return 1;
}
#endif

int safety_flags_policy(const safety_flags *f, frugal_safety_policy *p, int *any) {
    frugal_safety_policy_default(p);
    *any = 0;
    if (f->policy_file) {
        if (read_policy_file(f->policy_file, p)) return 1;
        *any = 1;
    }
    const float src[] = {f->max_temp, f->max_gpu_temp, f->max_util, f->max_gpu_util, f->max_power, f->max_psi};
    double *dst[] = {&p->max_temp, &p->max_gpu_temp, &p->max_util, &p->max_gpu_util, &p->max_power, &p->max_psi};
    for (int i = 0; i < 6; i++)
        if (src[i] >= 0) { *dst[i] = src[i]; *any = 1; }
    if (f->duty >= 0) p->duty = f->duty;
    if (f->interval_ms) p->interval_ms = f->interval_ms;
    if (f->min_free) {
        if (frugal_parse_size(f->min_free, &p->min_free) != 0) {
            cli_error("--min-free: '%s' is not a size such as 512M or 2G", f->min_free);
            return EXIT_USAGE;
        }
        *any = 1;
    }
    p->verbose = f->verbose;
    return 0;
}

static void num(FILE *out, const char *key, double v, int first) {
    fprintf(out, isfinite(v) ? "%s\"%s\": %.6g" : "%s\"%s\": null", first ? "" : ", ", key, v);
}

static void inum(FILE *out, const char *key, long long v) {
    fprintf(out, v < 0 ? ", \"%s\": null" : ", \"%s\": %lld", key, v);
}

void safety_print_json(FILE *out, const frugal_readings *r) {
    fputc('{', out);
    num(out, "cpu_temp_c", r->cpu_temp_c, 1);
    num(out, "peak_cpu_temp_c", r->peak_cpu_temp_c, 0);
    num(out, "gpu_temp_c", r->gpu_temp_c, 0);
    num(out, "peak_gpu_temp_c", r->peak_gpu_temp_c, 0);
    num(out, "cpu_util_pct", r->cpu_util_pct, 0);
    num(out, "cpu_freq_mhz", r->cpu_freq_mhz, 0);
    num(out, "cpu_watts", r->cpu_watts, 0);
    num(out, "avg_watts", r->avg_watts, 0);
    num(out, "psi_some_avg10", r->psi_some_avg10, 0);
    inum(out, "mem_room_bytes", r->mem_room);
    inum(out, "throttle_count", r->throttle_count);
    num(out, "throttled_s", r->throttled_s, 0);
    num(out, "throttled_step_s", r->throttled_step_s, 0);
    fprintf(out, ", \"throttling\": %d, \"throttle_events\": %llu, \"degrade_level\": %d, \"degrade_steps\": %llu, "
            "\"recoveries\": %llu, \"polls\": %llu", r->throttling, (unsigned long long)r->n_throttle_on,
            r->degrade_level, (unsigned long long)r->n_degrade, (unsigned long long)r->n_recover,
            (unsigned long long)r->n_polls);
    num(out, "poll_cpu_s", r->poll_cpu_s, 0);
    num(out, "poll_wall_s", r->poll_wall_s, 0);
    inum(out, "vk_mem_used_bytes", r->vk_mem_used);
    inum(out, "vk_mem_budget_bytes", r->vk_mem_budget);
    inum(out, "vk_heap_budget_bytes", r->vk_heap_budget);
    inum(out, "vk_heap_usage_bytes", r->vk_heap_usage);
    fputc('}', out);
}

void safety_print_text(FILE *out, const frugal_readings *r) {
    double overhead = r->poll_wall_s > 0 ? 100 * r->poll_cpu_s / r->poll_wall_s : 0;
    fprintf(out, "safety: peak CPU temp ");
    fprintf(out, isfinite(r->peak_cpu_temp_c) ? "%.1f C" : "n/a", r->peak_cpu_temp_c);
    fprintf(out, ", peak GPU temp ");
    fprintf(out, isfinite(r->peak_gpu_temp_c) ? "%.1f C" : "n/a", r->peak_gpu_temp_c);
    fprintf(out, ", avg power ");
    fprintf(out, isfinite(r->avg_watts) ? "%.1f W" : "n/a", r->avg_watts);
    fprintf(out, " | throttled %.2f s (%llu times) | degrade level %d (%llu steps, %llu undone) | "
            "monitor %llu polls, %.3f %% of a core\n", r->throttled_s, (unsigned long long)r->n_throttle_on,
            r->degrade_level, (unsigned long long)r->n_degrade, (unsigned long long)r->n_recover,
            (unsigned long long)r->n_polls, overhead);
    if (r->vk_mem_used >= 0) {
        fprintf(out, "safety: Vulkan device memory %.1f of %.1f MiB budget", r->vk_mem_used / 1048576.0,
                r->vk_mem_budget / 1048576.0);
        if (r->vk_heap_budget >= 0)
            fprintf(out, "; driver heap budget %.1f MiB, used %.1f MiB", r->vk_heap_budget / 1048576.0,
                    r->vk_heap_usage / 1048576.0);
        fputc('\n', out);
    }
}
