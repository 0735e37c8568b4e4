"""A quiet start: at default verbosity the frameworks maas drives (TensorFlow, absl, oneDNN, gRPC, Keras,
Alembic) print nothing a user did not ask for; `MAAS_LOG_LEVEL=DEBUG`-style verbosity is theirs to change.

Set at the entry point, before those libraries are imported: their C++ logging reads the environment once.
"""

from __future__ import annotations

import logging
import os
import warnings

# Values used only when the user has not set them: the user's own choice wins.
_ENV_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow's C++ INFO/WARNING lines (oneDNN, cuda probing)
    "TF_ENABLE_ONEDNN_OPTS": "0",  # its "oneDNN custom operations are on" notice (and numeric drift)
    "GRPC_VERBOSITY": "ERROR",  # absl's "All log messages before absl::InitializeLog()" from grpc
    "GLOG_minloglevel": "2",
    "KERAS_BACKEND": "torch",  # maas uses Keras 3 on torch; without this Keras would import TensorFlow
}
_QUIET_LOGGERS = ("alembic", "absl", "tensorflow", "h5py", "keras")
_QUIET_WARNINGS = (
    r"You are saving your model as an HDF5 file",  # Keras: the demo's .h5 is the tutorial's format on purpose
    r"Do not pass an `input_shape`",  # Keras 3 on models written for Keras 2 (the tutorial's)
    r".*HDF5.*legacy",
)


def quiet_third_parties() -> None:
    for key, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if name == "alembic" else logging.ERROR)
    for pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
