"""What ``cnnstep train`` does, as a library: a training job in an output folder.

Lives here: ``settings`` (the command's settings, their defaults, what a resumed run may
change, their schema in a checkpoint), ``recipe`` (what is chosen from the data when not
given: architecture, learning rate, batch size, shifts; one registry entry per kind of data),
``folder`` (the output folder: numbered when taken, one run at a time by a lock), ``run``
(:func:`~cnnstep.train.job.run.run_job`: data, model, training, then the model, metrics and
plots written). The command line only parses arguments into settings and prints what a job
reports.

May import: :mod:`cnnstep.train` and what it may import.
"""
