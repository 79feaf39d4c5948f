"""The Arrow calls the rule engine makes without ``pyarrow.compute`` give what ``pyarrow.compute`` gives,
and a hunt never imports it (50-80 ms in every hunt process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mamori.detect.sigma import arrow_kernels as kernels
from mamori.events.frame import arrow_series

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_masks_and_codes_read_nulls_and_slices_as_arrow_does() -> None:
    flags = pa.array([True, None, False, True, None, True, False, True, True, None])
    for array in (flags, flags.slice(3), flags.slice(1, 6), pa.array([True, False])):
        filled = pc.fill_null(array, False).to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(kernels.true_mask(array), filled)
        np.testing.assert_array_equal(kernels.valid_mask(array), pc.is_valid(array).to_numpy(zero_copy_only=False))
    encoded = pc.dictionary_encode(pa.array(["a", None, "b", "a", None, "c"]))
    for indices in (encoded.indices, encoded.indices.slice(2)):
        expected = pc.fill_null(indices, 9).to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(kernels.codes_or(indices, 9), expected)
    chunked = pa.chunked_array([[True, None], [False, True]])
    np.testing.assert_array_equal(kernels.true_mask(chunked), [True, False, False, True])


def test_take_cast_and_series_keep_values() -> None:
    values = pa.array(["x", None, "yz"])
    assert kernels.take(values, [2, 0]).to_pylist() == ["yz", "x"]
    assert kernels.to_large_string(values).type == pa.large_string()
    assert arrow_series("v", values).to_list() == ["x", None, "yz"]


def test_a_hunt_never_imports_pyarrow_compute(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mamori.hunt import run_hunt\n"
        f"result = run_hunt([Path({str(FIXTURES / 'windows')!r})], [Path({str(FIXTURES / 'rules')!r})], workers=1,"
        f" cache_dir=Path({str(tmp_path)!r}))\n"
        "assert result.detections\n"
        "print('pyarrow.compute' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def test_non_null_views_keep_each_value_and_its_row() -> None:
    texts = [None, "short", "a value longer than twelve bytes", None, "", "ünïcödé and more than twelve", None]
    views = pa.array(texts, type=pa.string_view())
    for array, rows in ((views, texts), (views.slice(2), texts[2:]), (views.slice(1, 4), texts[1:5])):
        result = kernels.non_null_views(array)
        assert result is not None
        compact, positions = result
        assert positions.tolist() == [i for i, text in enumerate(rows) if text is not None]
        assert compact.to_pylist() == [text for text in rows if text is not None]
        assert compact.type == pa.string_view() and compact.null_count == 0
    assert kernels.non_null_views(pa.array(["x", None])) is None  # (plain strings: not this way)
    assert kernels.non_null_views(pa.chunked_array([views])) is None
