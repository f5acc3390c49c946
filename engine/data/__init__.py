"""The training data pipeline: the cached, columnar index of a protocol's subset, and what turns
its files into batches (speed perturbation, ...).

``training_index.load_training_table`` lists a subset through pyannote.database once,
checks its files, and keeps uri, path, duration, speaker and speech regions as numpy
arrays in a cache folder; later starts, resumes and ranks memory-map them.
"""
