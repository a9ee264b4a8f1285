"""Callbacks come from the config's `callbacks` block (lightning-hydra-template style)."""

from __future__ import annotations

import pytest
from lightning.pytorch.callbacks import Timer
from omegaconf import open_dict

from miga.callbacks.image_grid import ImageGrids
from miga.callbacks.progress import AttackProgressBar
from miga.callbacks.results_writer import ResultsWriter
from miga.callbacks.signals import StopOnSigterm
from miga.run import results_writer
from miga.utils.config import config_hash
from miga.utils.instantiate import instantiate_callbacks
from tests.conftest import compose_config


def test_the_default_block_builds_the_four_callbacks_in_order_wired_by_interpolation() -> None:
    cfg = compose_config(["metrics.grid_images=3"])
    callbacks = instantiate_callbacks(cfg.callbacks)
    assert [type(c) for c in callbacks] == [
        ResultsWriter,
        ImageGrids,
        AttackProgressBar,
        StopOnSigterm,  # after the writer: the batch in flight is saved first
    ]
    writer, grids = callbacks[:2]
    assert str(writer.output_dir) == cfg.paths.output_dir
    assert grids.max_images == 3
    assert str(grids.output_dir.parent) == cfg.paths.output_dir


def test_one_callback_is_removed_or_added_by_name_from_the_command_line() -> None:
    removed = instantiate_callbacks(compose_config(["~callbacks.image_grids"]).callbacks)
    assert [type(c) for c in removed] == [ResultsWriter, AttackProgressBar, StopOnSigterm]
    nulled = instantiate_callbacks(compose_config(["callbacks.progress=null"]).callbacks)
    assert [type(c) for c in nulled] == [ResultsWriter, ImageGrids, StopOnSigterm]
    cfg = compose_config(["+callbacks.timer={_target_:lightning.pytorch.callbacks.Timer}"])
    added = instantiate_callbacks(cfg.callbacks)
    assert len(added) == 5 and isinstance(added[-1], Timer)


def test_callbacks_do_not_enter_the_config_hash() -> None:
    """They decide where results go and what the console shows, not what a row holds: a cell
    run without grids resumes the same results (and older folders keep their hash)."""
    plain = cell_hash([])
    assert plain == cell_hash(["~callbacks.image_grids"])
    assert plain == cell_hash(["+callbacks.timer={_target_:lightning.pytorch.callbacks.Timer}"])
    assert plain != cell_hash(["seed=1"])


def cell_hash(overrides: list[str]) -> str:
    """The hash a cell records: of its config as `miga.run` sees it (no `hydra` node)."""
    cfg = compose_config(overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    return config_hash(cfg)


def test_bad_entries_stop_with_the_key_and_what_was_expected() -> None:
    with pytest.raises(ValueError, match=r"callbacks\.oops must be a mapping with a `_target_`"):
        instantiate_callbacks({"oops": {"output_dir": "x"}})
    with pytest.raises(TypeError, match=r"callbacks\.not_one: .*Counter.*not a lightning"):
        instantiate_callbacks({"not_one": {"_target_": "collections.Counter"}})
    with pytest.raises(TypeError, match="callbacks must be a mapping"):
        instantiate_callbacks(["miga.callbacks.progress.AttackProgressBar"])


def test_a_cell_without_its_results_writer_is_refused_by_name() -> None:
    callbacks = instantiate_callbacks(compose_config(["~callbacks.results_writer"]).callbacks)
    with pytest.raises(ValueError, match=r"callbacks\.results_writer\), found 0"):
        results_writer(callbacks)
