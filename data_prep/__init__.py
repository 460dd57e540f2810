"""Data preparation: corpus, vocabulary and pretraining TFRecords."""

import os

# The Model Garden modules imported here are built on Keras 2 (tf_keras).
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
