"""The LightningDataModule every dataset is served through (predict split only)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset, Subset


class PredictDataModule(L.LightningDataModule):
    """Serves `dataset` for `Trainer.predict`, in order, optionally without done samples.

    `task` records what the dataset's semantics are scored by (classification, ocr, style, …).
    Items must carry their global `index`: results are keyed by it, so skipping finished
    samples on resume (`skip`) changes nothing about the rows that remain. `collate_fn` batches
    the items (None: PyTorch's default, which needs equal sizes; `loader=pad_center`:
    `miga.data.collate.PadCenter`, native sizes with centred zero padding).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 8,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"loader.batch_size must be >= 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.skip: Collection[int] = ()

    def skip_indices(self, done: Collection[int]) -> None:
        """Leave out samples whose results already exist (resume)."""
        self.skip = set(done)

    def predict_dataloader(self) -> DataLoader:
        dataset = self.dataset
        if self.skip:
            keep = [i for i in range(len(dataset)) if i not in self.skip]
            dataset = Subset(dataset, keep)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=self.collate_fn,
        )
