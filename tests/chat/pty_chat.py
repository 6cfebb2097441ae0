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


fails = 0


def check(ok, what):
    global fails
    print(("PASS: " if ok else "FAIL: ") + what)
    fails += 0 if ok else 1


check(wait_for(b"> ", 0), "the prompt appears")
mark = len(out)
os.write(fd, b"hello\r")
check(wait_for(b"\n> ", mark + 6), "an answer, then the prompt again")
mark = len(out)
os.write(fd, b"\x03")
# the terminal flushes its input queue on the interrupt (no NOFLSH): type the next
# line once the new prompt shows, as a person would
check(wait_for(b"> ", mark), "a new prompt after Ctrl-C")
mark = len(out)
os.write(fd, b"/stats\r")
check(wait_for(b"stats: turns 1, messages 2", mark), "Ctrl-C at the prompt does not leave")
os.write(fd, b"\x04")
wait_for(b"\0", len(out))  # read until the child closes the terminal
_, status = os.waitpid(pid, 0)
check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "Ctrl-D leaves with status 0")
sys.exit(1 if fails else 0)
