"""An export with a learned head loads and encodes where poolhead cannot be imported.

The export is loaded in a fresh Python process in which ``import poolhead`` fails (a
``sys.meta_path`` finder refuses it, ahead of the editable install's path entry), with
only sentence-transformers and ``trust_remote_code=True``; its embeddings must equal
poolhead's own Encoder's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import catalogue
import numpy as np
import torch
from catalogue import trained_looking
from transformers.dynamic_module_utils import get_relative_import_files

from poolhead import Encoder
from poolhead.backbone import load_backbone
from poolhead.export import export_sentence_transformer

TEXTS = ["A man is playing a guitar.", "Hi", "Padding matters when the batch mixes long and short sentences."]
# Every learned head with its options, and a fixed strategy sentence-transformers lacks.
HEADS = {**catalogue.HEADS, "min": {"name": "min"}}

WITHOUT_POOLHEAD = """
import importlib.abc, json, sys

class RefusePoolhead(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "poolhead" or name.startswith("poolhead."):
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, RefusePoolhead())
try:
    import poolhead
except ImportError:
    pass
else:
    sys.exit("poolhead imported: this process proves nothing")

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

torch.set_num_threads(int(sys.argv[1]))  # the parent's: summation order, and so the last bits, follow it
texts = json.loads(sys.argv[2])
for folder in sys.argv[3:]:
    model = SentenceTransformer(folder, trust_remote_code=True, device="cpu")
    assert type(model[1]).__module__.startswith("transformers_modules."), type(model[1]).__module__
    np.save(folder + ".npy", model.encode(texts, convert_to_numpy=True))
print("poolhead importable:", "poolhead" in sys.modules)
"""


def build(config: dict):
    return trained_looking(catalogue.build(config, hidden_size=32))


def test_exports_load_and_encode_where_poolhead_is_not_installed(tiny_model_dir, tmp_path):
    backbone = load_backbone(tiny_model_dir)
    heads = {kind: build(config) for kind, config in HEADS.items()}
    folders = {kind: export_sentence_transformer(backbone, head, tmp_path / kind) for kind, head in heads.items()}
    # Heads sentence-transformers holds in its own modules (softmax layer weights around the mean) carry no
    # poolhead code: they load anywhere trivially, and the child process checks the pooling module is ours.
    folders = {kind: folder for kind, folder in folders.items() if (folder / "poolhead_pooling").is_dir()}
    assert len(folders) >= len(HEADS) - 1
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "hf_modules")}

    threads = str(torch.get_num_threads())
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_POOLHEAD, threads, json.dumps(TEXTS), *map(str, folders.values())],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    assert "poolhead importable: False" in result.stdout
    for kind, folder in folders.items():
        standalone = torch.from_numpy(np.load(f"{folder}.npy"))
        expected = Encoder(backbone, pooler=heads[kind]).encode(TEXTS)
        torch.testing.assert_close(standalone, expected, atol=1e-5, rtol=0, msg=kind)


def test_transformers_copies_every_pooling_file_an_export_carries(tiny_model_dir, tmp_path):
    # transformers copies into its module cache only what "from .x import" lines reach from
    # the module file; a pooling file it misses would fail at import in the user's process.
    out = export_sentence_transformer(tiny_model_dir, build(HEADS["attention"]), tmp_path / "export")
    code = out / "poolhead_pooling"

    reached = {os.path.basename(f) for f in get_relative_import_files(code / "st_module.py")}

    carried = {f.name for f in code.glob("*.py")} - {"__init__.py", "st_module.py"}
    assert carried <= reached, f"not reached from st_module.py: {sorted(carried - reached)}"
    # Top-level imports only: st_module.py's fallback to the installed package sits in a try block.
    absolute = [f"{f.name}: {line}" for f in code.glob("*.py") for line in f.read_text().splitlines()
                if line.startswith(("import poolhead", "from poolhead"))]  # fmt: skip
    assert not absolute, f"copied code must not need poolhead installed: {absolute}"
