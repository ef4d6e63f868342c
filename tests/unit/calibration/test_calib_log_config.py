"""The package logger helpers (log.py) and CalibConfig validation/metadata."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from flexiq_trt import log
from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.errors import ConfigError


@pytest.fixture
def restore_logger():
    root = logging.getLogger(log.LOGGER_NAME)
    level, propagate, handlers = root.level, root.propagate, list(root.handlers)
    yield root
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    log._configured_handlers.clear()
    root.setLevel(level)
    root.propagate = propagate


def test_library_logger_has_only_a_null_handler():
    root = logging.getLogger(log.LOGGER_NAME)
    assert any(isinstance(h, logging.NullHandler) for h in root.handlers)
    assert log.get_logger("flexiq_trt.calibration.x").name == "flexiq_trt.calibration.x"
    assert log.get_logger("search").name == "flexiq_trt.search"
    assert log.get_logger().name == "flexiq_trt"


def test_configure_replaces_its_handlers_and_writes_the_file(tmp_path, restore_logger):
    log.configure(0)
    log.configure(1, tmp_path / "run.log")
    added = [h for h in restore_logger.handlers if not isinstance(h, logging.NullHandler)]
    assert len(added) == 2  # one console + one file, not four
    log.get_logger("t").debug("debug line %d", 42)
    for handler in added:
        handler.flush()
    assert "debug line 42" in (tmp_path / "run.log").read_text()
    assert log.verbosity_to_level(-1) == logging.WARNING and log.verbosity_to_level(-5) == logging.ERROR


def test_stage_logs_start_finish_and_failure(caplog):
    logger = log.get_logger("stage_test")
    with caplog.at_level(logging.INFO, logger=log.LOGGER_NAME):
        with log.stage("calibrate", logger):
            pass
        with pytest.raises(ValueError), log.stage("search", logger):
            raise ValueError("x")
    text = caplog.text
    assert "calibrate: started" in text and "calibrate: finished in" in text
    assert "search: FAILED after" in text


def test_progress_off_tty_logs_sparingly_and_yields_everything(caplog, monkeypatch):
    logger = log.get_logger("progress_test")
    with caplog.at_level(logging.INFO, logger=log.LOGGER_NAME):
        assert list(
            log.progress(range(100), total=100, desc="batches", interval_s=3600, logger=logger)
        ) == list(range(100))
        quiet = len(caplog.records)
        assert list(log.progress(range(3), total=3, desc="batches", interval_s=0.0, logger=logger)) == [
            0,
            1,
            2,
        ]
    assert quiet == 0
    assert [r.getMessage().split(" (")[0] for r in caplog.records[:3]] == [
        "batches: 1/3",
        "batches: 2/3",
        "batches: 3/3",
    ]


def test_calib_config_fields_have_help_and_valid_defaults():
    config = CalibConfig()
    for field in dataclasses.fields(config):
        assert field.metadata.get("help"), field.name
    by_name = {f.name: f for f in dataclasses.fields(CalibConfig)}
    assert by_name["method"].metadata["choices"] == ("mse", "percentile", "max")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 3  # type: ignore[misc]
    assert CalibConfig(image_mean=[0.5]).image_mean == (0.5,)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size=0 must be >= 1"),
        ({"method": "kl"}, "method='kl' must be one of"),
        ({"percentile": 0.0}, r"percentile=0.0 must be in \(0, 100\]"),
        ({"num_bins": 15}, "num_bins=15 must be even"),
        ({"image_std": (0.0,)}, "image_std=.* no zeros"),
        ({"image_layout": "CHW"}, "image_layout='CHW'"),
        ({"max_samples": 0}, "max_samples=0"),
    ],
)
def test_calib_config_errors_name_the_field(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        CalibConfig(**kwargs)


def test_progress_uses_a_bar_on_a_tty(monkeypatch, capsys):
    monkeypatch.setattr(log, "_use_bar", lambda logger: True)
    assert list(log.progress(iter(range(5)), total=5, desc="bar")) == [0, 1, 2, 3, 4]
    assert "bar" in capsys.readouterr().err  # tqdm drew on stderr
    monkeypatch.setenv(log.PROGRESS_ENV, "0")
    monkeypatch.undo()
    monkeypatch.setenv(log.PROGRESS_ENV, "0")
    assert not log._use_bar(log.get_logger())
