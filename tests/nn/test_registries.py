"""Adding a layer (with state), an architecture, an optimizer or a schedule touches one module:
each registers itself, and model files, the training loop and the CLI find it."""

from __future__ import annotations

import numpy as np
import pytest

import cnnstep.nn.layers.conv as conv_layers
from cnnstep import Conv2D, Dense, Flatten, Sequential, gradient_check, load_model
from cnnstep.nn.architectures import ARCHITECTURES, build_architecture, register_architecture
from cnnstep.nn.layers import LAYER_TYPES, Layer, layer_from_config, register_layer
from cnnstep.nn.optimizers import OPTIMIZERS, SGD, optimizer_from_config, register_optimizer
from cnnstep.nn.schedules import SCHEDULES, get_schedule, register_schedule
from cnnstep.train.runners import make_runner


class RunningMean(Layer):
    """A layer with state: passes its input through and keeps a running mean of each feature."""

    serial_training = True

    def __init__(self, momentum: float = 0.5) -> None:
        super().__init__()
        self.momentum = momentum

    def build(self, input_shape, rng, dtype=np.float32):
        self.state = {"mean": np.zeros(input_shape[-1], dtype=dtype)}
        return super().build(input_shape, rng, dtype)

    def forward(self, x, training=False):
        if training:
            batch = x.reshape(-1, x.shape[-1]).mean(axis=0)
            self.state["mean"][...] = (self.momentum * self.state["mean"]
                                       + (1 - self.momentum) * batch)
        return x

    def backward(self, dout, need_input_grad=True):
        return dout if need_input_grad else None

    def get_config(self):
        return {"momentum": self.momentum}


@pytest.fixture
def running_mean():
    register_layer(RunningMean)
    yield RunningMean
    LAYER_TYPES.pop("RunningMean", None)


def _model_with_state():
    return Sequential([Conv2D(2, 3), RunningMean(), Flatten(), Dense(3)], (6, 6, 1), seed=0,
                      dtype=np.float64)


def test_a_layers_state_is_saved_and_loaded(tmp_path, running_mean):
    model = _model_with_state()
    x = np.random.default_rng(0).random((5, 6, 6, 1))
    y = np.array([0, 1, 2, 0, 1])
    model.fit(x, y, epochs=1, batch_size=5, threads=1)
    mean = model.layers[1].state["mean"].copy()
    assert np.any(mean != 0)
    model.save(tmp_path / "m.npz")
    again = load_model(tmp_path / "m.npz")
    assert isinstance(again.layers[1], RunningMean)
    assert np.array_equal(again.layers[1].state["mean"], mean)
    assert np.array_equal(again.predict_proba(x), model.predict_proba(x))


def test_gradient_check_casts_state_and_replicas_share_it(running_mean):
    model = Sequential([Conv2D(2, 3), RunningMean(), Flatten(), Dense(3)], (6, 6, 1), seed=0)
    x = np.random.default_rng(1).random((2, 6, 6, 1))
    errors = gradient_check(model, x, max_entries=20)
    assert max(errors.values()) < 1e-6
    assert model.layers[1].state["mean"].dtype == np.float32  # the original is untouched
    replica = model.replica()
    assert replica.layers[1].state["mean"] is model.layers[1].state["mean"]
    # a layer that updates state in training keeps the model on one thread
    runner = make_runner(model, 2)
    assert not hasattr(runner, "replicas")
    runner.close()


def test_a_registered_layer_is_built_from_a_config(running_mean):
    layer = layer_from_config({"type": "RunningMean", "config": {"momentum": 0.9}})
    assert isinstance(layer, RunningMean) and layer.momentum == 0.9
    with pytest.raises(ValueError, match="unknown layer type 'Nope'"):
        layer_from_config({"type": "Nope"})


def test_output_shapes_come_from_geometry_not_from_running_the_op(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("the op ran to find a shape")

    monkeypatch.setattr(conv_layers, "conv2d_forward", boom)
    model = Sequential([Conv2D(4, 3, stride=2, padding="same"), Flatten(), Dense(2)],
                       (9, 7, 3), seed=0)
    assert model.layers[0].output_shape == (5, 4, 4)
    with pytest.raises(ValueError, match="window does not fit"):
        Sequential([Conv2D(4, 5, padding="valid")], (3, 3, 1))


def test_registered_architecture_optimizer_and_schedule(monkeypatch):
    monkeypatch.setattr("cnnstep.nn.architectures.ARCHITECTURES", dict(ARCHITECTURES))
    monkeypatch.setattr("cnnstep.nn.optimizers.OPTIMIZERS", dict(OPTIMIZERS))
    monkeypatch.setattr("cnnstep.nn.schedules.SCHEDULES", dict(SCHEDULES))
    import cnnstep.nn.architectures as arch
    import cnnstep.nn.optimizers as opt
    import cnnstep.nn.schedules as sched

    @register_architecture("tiny")
    def tiny(n_classes):
        return [Flatten(), Dense(n_classes)]

    @register_optimizer
    class Plain(SGD):
        pass

    @register_schedule("halving")
    def halving(base_lr, step, total_steps):
        return base_lr / 2 ** step

    assert "tiny" in arch.ARCHITECTURES and "plain" in opt.OPTIMIZERS
    assert "halving" in sched.SCHEDULES
    model = build_architecture("tiny", (4, 4, 1), 3)
    assert model.output_shape == (3,)
    assert isinstance(optimizer_from_config("Plain", {"lr": 0.1}), Plain)
    assert get_schedule("halving")(1.0, 2, 10) == 0.25
    with pytest.raises(ValueError, match="schedule must be one of"):
        get_schedule("nope")
