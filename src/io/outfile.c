/* outfile.c - see outfile.h. */
#include "io/outfile.h"

#include "core/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Temp files open in this process, for the signal handler. Each slot holds a
 * malloc'd name or NULL; the handler only reads the pointers and calls unlink(),
 * which is async-signal-safe. Slots are claimed/released with atomics. */
#define MAX_OPEN 32
static _Atomic(char *) g_open[MAX_OPEN];
static atomic_int g_handlers_installed;

static void on_signal(int sig) {
    for (int i = 0; i < MAX_OPEN; i++) {
        char *t = atomic_load(&g_open[i]);
        if (t) unlink(t);
    }
    /* then die of the signal as we would have without this handler */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_handlers(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&g_handlers_installed, &expected, 1)) return;
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

static int claim_slot(char *tmp) {
    for (int i = 0; i < MAX_OPEN; i++) {
        char *expected = NULL;
        if (atomic_compare_exchange_strong(&g_open[i], &expected, tmp)) return i;
    }
    return -1; /* more than MAX_OPEN at once: still removed on errors, not on signals */
}

static void release(fr_outfile *o) {
    if (o->slot >= 0) atomic_store(&g_open[o->slot], NULL);
    o->slot = -1;
    free(o->tmp);
    free(o->path);
    o->tmp = o->path = NULL;
    o->fp = NULL;
}

int fr_outfile_check_target(const char *path, fr_err *err) {
    struct stat st;
    if (stat(path, &st) != 0) return FRUGAL_OK; /* absent (or unreachable: open will say) */
    if (S_ISREG(st.st_mode)) return FRUGAL_OK;
    const char *what = S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
                     : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : S_ISSOCK(st.st_mode) ? "a socket"
                     : "not a regular file";
    return fr_err_set(err, FRUGAL_E_IO, "%s exists and is %s; refusing to replace it (write to a regular file)",
                      path, what);
}

int fr_outfile_open(fr_outfile *o, const char *path, fr_err *err) {
    memset(o, 0, sizeof *o);
    o->slot = -1;
    int rc = fr_outfile_check_target(path, err);
    if (rc) return rc;
    size_t pl = strlen(path);
    o->path = fr_strdup(path);
    o->tmp = fr_malloc(pl + 48);
    if (!o->path || !o->tmp || fr_fault_hit(FR_FAULT_ALLOC)) {
        release(o);
        return fr_err_set(err, FRUGAL_E_NOMEM, "%s: out of memory for the temp file name", path);
    }
    static atomic_uint counter;
    install_handlers();
    int fd = -1, e = 0;
    for (int tries = 0; tries < 100 && fd < 0; tries++) {
        snprintf(o->tmp, pl + 48, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
        if (fr_fault_hit(FR_FAULT_IO)) { e = EIO; break; }
        fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        e = errno;
        if (fd < 0 && e != EEXIST) break;
    }
    if (fd < 0) {
        rc = fr_err_set(err, FRUGAL_E_IO, "cannot create %s: %s", o->tmp, strerror(e));
        release(o);
        return rc;
    }
    o->slot = claim_slot(o->tmp);
    o->fp = fdopen(fd, "wb");
    if (!o->fp) {
        rc = fr_err_set(err, FRUGAL_E_IO, "cannot open %s: %s", o->tmp, strerror(errno));
        close(fd);
        unlink(o->tmp);
        release(o);
        return rc;
    }
    setvbuf(o->fp, NULL, _IOFBF, 1 << 20);
    return FRUGAL_OK;
}

int fr_outfile_write(fr_outfile *o, const void *p, size_t n, fr_err *err) {
    if (!o->fp) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "write to a closed output file");
    if (n == 0) return FRUGAL_OK;
    errno = 0;
    if (fr_fault_hit(FR_FAULT_IO)) errno = EIO;
    else if (fwrite(p, 1, n, o->fp) == n) return FRUGAL_OK;
    return fr_err_set(err, FRUGAL_E_IO, "write %s: %s", o->tmp, strerror(errno ? errno : EIO));
}

/* fsync the directory holding path, so the rename itself is durable (best effort:
 * some file systems refuse to open or sync directories). */
static void sync_dir(const char *path) {
    char *copy = fr_strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int fr_outfile_commit(fr_outfile *o, fr_err *err) {
    if (!o->fp) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "commit of a closed output file");
    int rc = FRUGAL_OK;
    errno = 0;
    int fd = fileno(o->fp);
    if (fflush(o->fp) != 0 || fr_fault_hit(FR_FAULT_IO)) {
        rc = fr_err_set(err, FRUGAL_E_IO, "write %s: %s", o->tmp, strerror(errno ? errno : EIO));
    } else if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
        /* EINVAL/EROFS: the file system cannot sync (a pipe-like or special fs) */
        rc = fr_err_set(err, FRUGAL_E_IO, "fsync %s: %s", o->tmp, strerror(errno));
    }
    if (fclose(o->fp) != 0 && !rc) rc = fr_err_set(err, FRUGAL_E_IO, "close %s: %s", o->tmp, strerror(errno));
    o->fp = NULL;
    /* the target may have been replaced by a device/FIFO while we wrote */
    if (!rc) rc = fr_outfile_check_target(o->path, err);
    if (!rc && rename(o->tmp, o->path) != 0)
        rc = fr_err_set(err, FRUGAL_E_IO, "rename %s -> %s: %s", o->tmp, o->path, strerror(errno));
    if (rc) unlink(o->tmp);
    else sync_dir(o->path);
    release(o);
    return rc;
}

void fr_outfile_abort(fr_outfile *o) {
    if (!o || !o->tmp) return;
    if (o->fp) fclose(o->fp);
    o->fp = NULL;
    unlink(o->tmp);
    release(o);
}
