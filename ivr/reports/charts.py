"""The report as PNG charts: calls per day, per branch, and an hour × weekday heat map. The
labels are Vietnamese: DejaVu Sans (Debian's fonts-dejavu-core) carries every diacritic."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only

from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from ivr.reports.grouping import WEEKDAYS
from ivr.reports.report import Report


def write_png(report: Report, path: Path) -> None:
    """One PNG holding the three charts, one above the other."""
    with plt.rc_context({"font.family": "DejaVu Sans", "font.size": 9}):
        fig = plt.figure(figsize=(10, 13), dpi=100)
        try:
            _draw(fig, report)
            fig.savefig(path, format="png")
        finally:
            plt.close(fig)


def _draw(fig: Figure, report: Report) -> None:
    days, per_day = list(report.per_day), list(report.per_day.values())
    ax1, ax2, ax3 = fig.subplots(3, 1, gridspec_kw={"hspace": 0.45})
    ax1.bar(range(len(days)), per_day, color="#2b6cb0")
    step = max(1, len(days) // 15)
    ax1.set_xticks(range(0, len(days), step), [d[8:10] + "/" + d[5:7] for d in days[::step]])
    ax1.set_title(f"Cuộc gọi đến theo ngày ({report.period.label()})")
    ax1.set_ylabel("Số cuộc gọi")

    branches = list(report.per_branch)
    labels = [f"{b}. {report.branch_names.get(b, '')}"[:28] for b in branches]
    ax2.barh(labels[::-1], list(report.per_branch.values())[::-1], color="#2f855a")
    ax2.set_title("Cuộc gọi theo nhánh")

    image = ax3.imshow(report.heatmap, aspect="auto", cmap="YlOrRd")
    ax3.set_yticks(range(7), list(WEEKDAYS))
    ax3.set_xticks(range(24), [f"{h}" for h in range(24)])
    ax3.set_xlabel("Giờ trong ngày")
    ax3.set_title("Cuộc gọi theo giờ và thứ trong tuần")
    fig.colorbar(image, ax=ax3, label="Số cuộc gọi")
