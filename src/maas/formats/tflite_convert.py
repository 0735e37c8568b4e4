"""Child process of the TFLite exporter: `python -m maas.formats.tflite_convert SOURCE OUT`, run with
KERAS_BACKEND=tensorflow. Loads the Keras file in safe mode and writes TFLiteConverter's flatbuffer."""

from __future__ import annotations

import sys


def main(source: str, out: str) -> int:
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        sys.stderr.write(f"Keras runs on {keras.backend.backend()!r}; TFLiteConverter needs 'tensorflow'\n")
        return 2
    model = keras.models.load_model(source, safe_mode=True, compile=False)
    data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    with open(out, "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
