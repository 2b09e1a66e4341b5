"""Which steps the recorder writes, and how each tensor of a written step is logged.

The log starts with a state: step 0 (the initial weights), the step OpenCLIP's --resume checkpoint
left off at, or the step before a --window. That state is stored in full: params and buffers,
and past step 0 also the AdamW moments and GradScaler, which a replay or a what-if re-run starts
from. Then come the training steps, every one, or those in the window. data/* is stored at every
training step written, and --full-tensors at --full-steps. The rest gets digests and statistics
at the steps --digest-every selects, and is only declared (its group made, nothing read) at the
others.
"""
import fnmatch

from .record_args import RecordError

STATE = ("params/*", "buffers/*", "optimizer/*", "scaler/*")


def parse_steps(specs):
    """cliprepro's full-steps syntax as a predicate (step, last_step) -> bool."""
    rules = []
    for spec in specs:
        try:
            if ":" in spec:
                parts = spec.split(":")
                a = int(parts[0] or 0)
                b = int(parts[1]) if len(parts) > 1 and parts[1] else None
                k = int(parts[2]) if len(parts) > 2 and parts[2] else 1
                rules.append(lambda s, last, a=a, b=b, k=k: s >= a and (b is None or s < b)
                             and (s - a) % k == 0)
            else:
                n = int(spec)
                rules.append(lambda s, last, n=n: s == (last if n == -1 else n))
        except ValueError:
            raise RecordError(f"--full-steps {spec!r}: not an integer or \"a:b[:k]\"") from None
    return lambda s, last: any(r(s, last) for r in rules)


class StepSelection:
    def __init__(self, a):
        self.a = a
        self.user_steps = parse_steps(a.full_steps)
        self.first, self.end = a.window or (1, None)  # training steps first <= s < end
        self.start_step = self.last_step = 0

    def begin(self, resumed_step, last_step):
        """The run starts after `resumed_step` (0, or OpenCLIP's --resume checkpoint's step)."""
        self.last_step = last_step
        self.first = max(self.first, resumed_step + 1)
        if self.end is not None and self.end <= self.first:
            raise RecordError(f"--window {self.a.window[0]}:{self.end}: the run starts after step "
                              f"{resumed_step}, so the window holds no step")
        if self.first > last_step:
            raise RecordError(f"--window {self.first}: the run ends at step {last_step}")
        self.start_step = self.first - 1

    def trains(self, step):
        """Whether training step `step` is written."""
        return step >= self.first and (self.end is None or step < self.end)

    def done(self, step):
        """Whether `step` was the window's last: the run can stop."""
        return self.end is not None and step >= self.end - 1

    def state_globs(self):
        return STATE if self.start_step > 0 else STATE[:2]  # at step 0 the moments are zeros

    def mode(self, name, step):
        """"full" (stored and digested), "digest", or "declare" (its group only)."""
        if not (self.trains(step) or step == self.start_step):
            return "declare"
        if self.keep_full(name, step):
            return "full"
        return "digest" if step % self.a.digest_every == 0 else "declare"

    def keep_full(self, name, step):
        if self.trains(step) and fnmatch.fnmatchcase(name, "data/*"):
            return True
        if step == self.start_step and any(fnmatch.fnmatchcase(name, g)
                                           for g in self.state_globs()):
            return True
        return (any(fnmatch.fnmatchcase(name, g) for g in self.a.full_tensors)
                and self.user_steps(step, self.last_step))

    def may_store(self, name):
        return any(fnmatch.fnmatchcase(name, g)
                   for g in ("data/*",) + self.state_globs() + tuple(self.a.full_tensors))
