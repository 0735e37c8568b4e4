"""onnxruntime sessions with intra-op threads stop their spinning at the end of each run (#19): a worker left
spinning after a run burns a core that the event loop, the transports and the other sessions need."""

from __future__ import annotations

import numpy as np
import pytest

from maas.serving.runtime import OnnxRuntime

from .serving_models import linear


def test_a_multi_threaded_session_stops_spinning_when_its_run_ends() -> None:
    runtime = OnnxRuntime(linear(), intra_op_threads=2)
    options = runtime._session.get_session_options()
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
    assert options.intra_op_num_threads == 2  # the thread count asked for is kept
    out = runtime.run({"x": np.ones((2, 4), np.float32)})
    assert out["y"].shape == (2, 3)


def test_a_single_threaded_session_has_no_worker_threads_to_stop() -> None:
    options = OnnxRuntime(linear(), intra_op_threads=1)._session.get_session_options()
    assert options.intra_op_num_threads == 1
    with pytest.raises(Exception, match="force_spinning_stop"):
        options.get_session_config_entry("session.force_spinning_stop")
