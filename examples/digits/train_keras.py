"""Step 1 of the digits walk-through: the tutorial's Keras CNN, trained on scikit-learn's embedded digits.

Writes digits.h5 (the model), labels.txt, digits28-test.npz / digits28-calibration.npz (held-out and
calibration data), request.json (one digit as a V2 JSON request) and digit.png (the same digit as an image).
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 on PyTorch: no TensorFlow needed

import keras
import numpy as np
from keras.layers import Conv2D, Dense, Flatten, MaxPooling2D
from PIL import Image

from maas.demo import digits_28

x_train, x_test, y_train, y_test = digits_28()  # 8x8 digits -> 28x28x1 in [0, 1]
keras.utils.set_random_seed(0)
model = keras.Sequential([
    Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
    MaxPooling2D((2, 2)),
    Flatten(),
    Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=int(os.environ.get("EPOCHS", "8")), batch_size=32, verbose=0)
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
model.save("digits.h5")
print(f"saved digits.h5 (Keras test accuracy {accuracy:.4f})")

np.savez("digits28-test.npz", x=x_test, y=y_test)
np.savez("digits28-calibration.npz", x=x_train[:256], y=y_train[:256])
with open("labels.txt", "w") as f:
    f.write("\n".join(str(i) for i in range(10)) + "\n")
digit = x_test[:1]
with open("request.json", "w") as f:
    json.dump({"inputs": [{"name": "input_layer", "shape": [1, 28, 28, 1], "datatype": "FP32",
                           "data": digit.reshape(-1).round(4).tolist()}],
               "outputs": [{"name": "labels"}]}, f)
Image.fromarray((digit[0, :, :, 0] * 255).astype(np.uint8), mode="L").save("digit.png")
print(f"wrote request.json and digit.png (a {y_test[0]})")
