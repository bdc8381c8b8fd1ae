"""Networks: layers that hold parameters and state, the model that stacks them, and what trains
their parameters step by step.

Lives here: ``layers/`` (the :class:`~cnnstep.nn.layers.base.Layer` base class, its registry, one
module per family), ``model`` (:class:`Sequential`, the container), ``architectures`` (the named
built-in networks, registered), ``losses``, ``initializers``, ``optimizers`` (registered),
``schedules`` (learning-rate schedules, registered), ``gradcheck``, ``io`` (the model file),
``summary`` (the text of ``Sequential.summary``) and ``trainer`` (how ``Sequential.fit`` finds
the training loop, which lives above, in :mod:`cnnstep.train`, by its name).

May import: :mod:`cnnstep.ops` and this folder (plus top-level modules such as
``cnnstep.errors``). Never the training loop, data or the CLI.
"""
