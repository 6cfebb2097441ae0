"""pty_chat.py FRUGAL MODEL - drives `frugal chat` on a pseudo-terminal (the line
editing path): one message, Ctrl-C at the prompt (must not leave), /stats, then
Ctrl-D (must leave with status 0). Waits for output, never for a fixed time
(60 s limit per step). Prints PASS/FAIL lines; exit status 1 on a failure."""
import os
import pty
import select
import sys
import time

frugal, model = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(frugal, [frugal, "chat", "-m", model, "-n", "16", "-s", "1", "--temp", "0"])
out = b""


def wait_for(pattern, start):
    """Read until pattern appears in the output after offset start."""
    global out
    end = time.time() + 60
    while time.time() < end:
        if pattern in out[start:]:
            return True
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                return pattern in out[start:]
    return False


def wait_reading():
    """Wait until chat blocks reading its terminal (x86-64 Linux: /proc/PID/syscall
    reads "0 0x0 ...", read(0, ...)), as a person types only once the prompt is up.
    Input typed earlier may be flushed when the line editor sets the terminal up, and
    a Ctrl-C taken before the read starts interrupts nothing (no new prompt)."""
    end = time.time() + 60
    while time.time() < end:
        try:
            with open("/proc/%d/syscall" % pid) as f:
                if f.read().startswith("0 0x0 "):
                    return
        except OSError:  # no /proc/PID/syscall here: a pause instead
            time.sleep(1)
            return
        time.sleep(0.02)


fails = 0


def check(ok, what):
    global fails
    print(("PASS: " if ok else "FAIL: ") + what)
    fails += 0 if ok else 1


check(wait_for(b"> ", 0), "the prompt appears")
mark = len(out)
wait_reading()
os.write(fd, b"hello\r")
check(wait_for(b"\n> ", mark + 6), "an answer, then the prompt again")
mark = len(out)
wait_reading()
os.write(fd, b"\x03")
# the terminal flushes its input queue on the interrupt (no NOFLSH): type the next
# line once the new prompt shows, as a person would
check(wait_for(b"> ", mark), "a new prompt after Ctrl-C")
mark = len(out)
wait_reading()
os.write(fd, b"/stats\r")
check(wait_for(b"stats: turns 1, messages 2", mark), "Ctrl-C at the prompt does not leave")
# Ctrl-D only once the next prompt shows: the line editor may flush input typed
# before it set the terminal up (a Ctrl-D lost that way leaves chat waiting forever)
mark = out.index(b"stats: turns 1, messages 2", mark)
check(wait_for(b"> ", mark), "the prompt after /stats")
wait_reading()
os.write(fd, b"\x04")
wait_for(b"\0", len(out))  # read until the child closes the terminal


def reap(seconds):
    """The child's wait status, or None if it is still running after seconds."""
    end = time.time() + seconds
    while time.time() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    return None


status = reap(30)
if status is None:  # never hang the suite: report, kill, reap
    os.kill(pid, 9)
    os.waitpid(pid, 0)
check(status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
      "Ctrl-D leaves with status 0")
sys.exit(1 if fails else 0)
