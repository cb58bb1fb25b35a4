"""The progress bar `tokenwire pull` draws on stderr."""

import io

from server.cli_pull import ProgressBar
from tokenwire.downloads import Download

MiB = 1024 * 1024


def event(downloaded: int, total: int | None = 100 * MiB, status: str = "downloading") -> Download:
    percent = 100 * downloaded / total if total else 0.0
    return Download("dl-1", "smol", "http://h/x.gguf", "", "x.gguf", "/m/x.gguf", status, "regular",
                    downloaded, total, percent, 10 * MiB, (total - downloaded) / (10 * MiB)
                    if total else None, 0, "", "", False, "", "", 200, 0, 0, 1.0)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_redrawn_line():
    out = Terminal()
    bar = ProgressBar(out)
    bar.update(event(25 * MiB))
    bar.update(event(50 * MiB))
    bar.say("done")
    text = out.getvalue()
    assert text.count("\r\033[K") == 2 and text.endswith("\ndone\n")
    assert "[###############...............]  50.0% 50.0 MiB/100.0 MiB 10.0 MiB/s ETA 0:05" in text


def test_a_pipe_gets_a_line_per_ten_percent():
    out = io.StringIO()
    bar = ProgressBar(out)
    for mib in (0, 1, 5, 10, 11, 35, 100):
        bar.update(event(mib * MiB))
    bar.update(event(100 * MiB, status="completed"))  # statuses other than downloading: no bar
    lines = out.getvalue().splitlines()
    assert [line.split("%")[0].split()[-1] for line in lines] == ["0.0", "10.0", "35.0", "100.0"]


def test_unknown_size_shows_bytes_and_speed():
    out = io.StringIO()
    ProgressBar(out).update(event(3 * MiB, total=None))
    assert out.getvalue() == "smol 3.0 MiB 10.0 MiB/s\n"
