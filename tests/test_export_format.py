"""What an export's files say stays readable: the head's saved config carries a format version (old
exports without one still load), and modules.json names the pooling code by a fixed path."""

from __future__ import annotations

import json

import pytest
import torch

from poolhead import AttentionPooling
from poolhead.export.loading import CODE_FOLDER, CODE_TYPE
from poolhead.export.st_module import FORMAT_VERSION, PoolheadPooling
from poolhead.export.writer import copy_pooling_code


def saved_head(folder) -> PoolheadPooling:
    head = PoolheadPooling(AttentionPooling(16, num_heads=2))
    head.save(str(folder))
    return head


def test_the_saved_config_carries_its_format_version(tmp_path):
    saved_head(tmp_path)

    assert json.loads((tmp_path / "config.json").read_text())["format_version"] == FORMAT_VERSION == 1


def test_a_config_saved_before_versioning_loads_as_the_same_head(tmp_path):
    head = saved_head(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["format_version"]  # as exports written before it was added
    (tmp_path / "config.json").write_text(json.dumps(config))

    loaded = PoolheadPooling.load(str(tmp_path))

    assert loaded.pooler_config == head.pooler_config
    torch.testing.assert_close(loaded.pooler.state_dict(), head.pooler.state_dict())


def test_a_config_from_a_newer_format_is_refused_in_one_sentence(tmp_path):
    saved_head(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "format_version": FORMAT_VERSION + 1}))

    with pytest.raises(ValueError, match=r"format_version 2, but this poolhead reads versions 1 to 1; upgrade"):
        PoolheadPooling.load(str(tmp_path))


def test_modules_json_names_the_pooling_code_by_a_fixed_path_that_the_copied_code_fills(tmp_path):
    # A literal: exports written by every version name exactly this type.
    assert CODE_TYPE == "poolhead_pooling/st_module.PoolheadPooling"
    copy_pooling_code(tmp_path / CODE_FOLDER)

    module_file, class_name = CODE_TYPE.removeprefix(f"{CODE_FOLDER}/").rsplit(".", 1)
    source = (tmp_path / CODE_FOLDER / f"{module_file}.py").read_text(encoding="utf-8")
    assert f"class {class_name}(" in source
