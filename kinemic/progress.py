"""Progress bars the stages show during long loops (the library itself only logs)."""

from __future__ import annotations

from collections.abc import Callable

from tqdm import tqdm

from kinemic.classifier import EpochStats


def epoch_bar(desc: str, epochs: int) -> tuple[tqdm, Callable[[EpochStats], None]]:
    """A bar over classifier epochs and the per-epoch callback that advances it (loss and train accuracy shown):
    a classifier run takes a minute or more on a CPU, several under load."""
    bar = tqdm(total=epochs, desc=desc, unit="epoch", mininterval=2)

    def advance(stats: EpochStats) -> None:
        bar.set_postfix(loss=f"{stats.loss:.3f}", train_acc=f"{stats.train_accuracy:.2f}", refresh=False)
        bar.update(1)

    return bar, advance
