"""The Keras/TensorFlow side of keras_vs_monaicxr.py; runs in benchmarks/.venv-keras, never in the project's venv.

Builds the studies' binary CNN in Keras (the architecture of bundles/simple_cnn with binary_150.json), trains it on
the images the driver saved (an .npz of ``x`` ``(n, H, W, 1)`` float32 in [0, 1] and ``y`` ``(n,)`` 0/1), and
writes one JSON object with the images/s of each mode. It imports nothing from monaicxr, only TensorFlow, Keras
and NumPy, and reads nothing from the network.

Modes:
    step: ``model.fit(x, y)`` on the arrays in memory (Keras slices them into batches): the training step alone.
    idg: ``model.fit(ImageDataGenerator(...).flow(x, y))``, the studies' augmentation pipeline (one thread, as
        in their code: Keras' defaults ``workers=1``, ``use_multiprocessing=False``).
    layers: ``keras.layers`` random rotation / zoom / translation / flip mapped over a ``tf.data`` pipeline of
        the arrays (``num_parallel_calls=AUTOTUNE``, prefetch), Keras 3's recommended replacement.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--modes", nargs="+", default=["step", "idg"], choices=["step", "idg", "layers"])
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads")
    ap.add_argument("--interop_threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.interop_threads)
    import keras
    from keras import layers

    keras.utils.set_random_seed(args.seed)
    data = np.load(args.data)
    x, y = data["x"].astype("float32"), data["y"].astype("float32")
    n, h, w, c = x.shape

    def build() -> keras.Model:
        # Same layer order as monaicxr.networks.nets.SimpleCNN(conv_channels=(32, 64, 64, 128, 256),
        # batch_norm=True, dense=(128,), num_classes=1): Conv2D (valid, bias) -> BatchNorm -> ReLU -> MaxPool 2
        # -> Dropout 0.25 per stage; Flatten -> Dense 128 ReLU -> Dropout 0.5 -> Dense 1 sigmoid.
        inputs = keras.Input((h, w, c))
        t = inputs
        for channels in (32, 64, 64, 128, 256):
            t = layers.Conv2D(channels, 3, padding="valid")(t)
            t = layers.BatchNormalization()(t)
            t = layers.Activation("relu")(t)
            t = layers.MaxPooling2D(2)(t)
            t = layers.Dropout(0.25)(t)
        t = layers.Flatten()(t)
        t = layers.Dense(128, activation="relu")(t)
        t = layers.Dropout(0.5)(t)
        outputs = layers.Dense(1, activation="sigmoid")(t)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3), loss="binary_crossentropy")
        return model

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []
            self.cpu: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t, self._c = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._t)
            self.cpu.append(time.process_time() - self._c)

    def augment_layers() -> keras.Sequential:
        return keras.Sequential(
            [
                layers.RandomRotation(30 / 360, fill_mode="nearest"),
                layers.RandomZoom(0.2, 0.2, fill_mode="nearest"),
                layers.RandomTranslation(0.1, 0.1, fill_mode="nearest"),
                layers.RandomFlip("horizontal"),
            ]
        )

    results = {}
    probe = build()
    trainable = int(sum(np.prod(v.shape) for v in probe.trainable_weights))
    for mode in args.modes:
        model = build()  # a fresh model per mode, as the driver does on the monaicxr side
        timer = EpochTimer()
        if mode == "step":
            model.fit(
                x, y, batch_size=args.batch_size, shuffle=True, epochs=1 + args.epochs, verbose=0, callbacks=[timer]
            )
            config = "model.fit(x, y) on NumPy arrays in memory"
        elif mode == "idg":
            from keras.src.legacy.preprocessing.image import ImageDataGenerator  # tf.keras.preprocessing.image

            gen = ImageDataGenerator(
                rotation_range=30,
                zoom_range=0.2,
                width_shift_range=0.1,
                height_shift_range=0.1,
                horizontal_flip=True,
                fill_mode="nearest",
            )
            flow = gen.flow(x, y, batch_size=args.batch_size, shuffle=True, seed=args.seed)
            model.fit(flow, epochs=1 + args.epochs, verbose=0, callbacks=[timer])
            config = "ImageDataGenerator(rotation 30, zoom 0.2, shifts 0.1, hflip).flow(x, y), workers=1"
        else:
            aug = augment_layers()
            ds = (
                tf.data.Dataset.from_tensor_slices((x, y))
                .shuffle(n, seed=args.seed)
                .batch(args.batch_size)
                .map(lambda a, b, aug=aug: (aug(a, training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
                .prefetch(tf.data.AUTOTUNE)
            )
            model.fit(ds, epochs=1 + args.epochs, shuffle=False, verbose=0, callbacks=[timer])
            config = "tf.data + keras.layers RandomRotation/Zoom/Translation/Flip, map AUTOTUNE, prefetch"
        timed = timer.times[1:]
        results[mode] = {
            "images_per_s": n * len(timed) / sum(timed),
            "epoch_s": timed,
            "warmup_epoch_s": timer.times[0],
            "cpu_s_per_image": sum(timer.cpu[1:]) / (n * len(timed)),  # the whole process, tf.data threads included
            "config": config,
        }
    out = {
        "framework": f"TensorFlow {tf.__version__}, Keras {keras.__version__}",
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "params_trainable": trainable,
        "params_total": int(probe.count_params()),
        "images": n,
        "batch_size": args.batch_size,
        "results": results,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
